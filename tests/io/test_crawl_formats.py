"""The crawler stores every container the decoder reads (AVI, MKV, MPEG-TS, APNG...), end to end
against a real loopback HTTP server, and ingest's probe + sampler read what it stored."""

from __future__ import annotations

from pathlib import Path

from tests.support import media_factory as mf
from tests.support.crawl_servers import fast_params, fault_server, publish_items, records, source
from vigil.core.hashing import sha256_file
from vigil.crawl import crawl
from vigil.io.media.frame_folder import sample_frames
from vigil.io.media.probing import probe
from vigil.io.store import LocalStore


def test_avi_mkv_ts_and_apng_are_stored_not_quarantined_and_ingest_reads_them(tmp_path):
    # given a gallery serving an AVI (H.264), an AVI (MPEG-4 part 2), an MKV, a TS, an APNG and
    # an animated WebP, each perceptually distinct
    d = tmp_path / "clips"
    d.mkdir()
    media = {
        "avi264": mf.make_avi(d, "h264 clip.avi", codec="h264", seed=21),
        "avimp4": mf.make_avi(d, "mpeg4 clip.avi", codec="mpeg4", seed=22),
        "mkv": mf.make_mkv(d, seed=23),
        "ts": mf.make_ts(d, seed=24),
        "apng": mf.make_apng(d, seed=25),
        "webp": mf.make_animated_webp(d, seed=26),
    }
    store = LocalStore(tmp_path / "store")
    with fault_server() as server:
        publish_items(server, media, page_size=6)
        # when it is crawled
        report = crawl([source(server)], fast_params(), store, tmp_path / "state")
    # then the decodable ones are stored under their container's suffix, the WebP is quarantined
    # with a reason that says why
    assert (report.stored, report.quarantined, report.failed) == (5, 1, 0), report.problems
    by_sha = {r.sha256: r for r in records(store)}
    expected = {"avi264": ("video/x-msvideo", ".avi"), "avimp4": ("video/x-msvideo", ".avi"),
                "mkv": ("video/x-matroska", ".mkv"), "ts": ("video/mp2t", ".ts"), "apng": ("image/apng", ".png")}
    for item_id, (mime, suffix) in expected.items():
        item = by_sha[sha256_file(media[item_id])]
        assert item.media_type == mime and item.media_key.endswith(suffix) and item.phash
    problems = " ".join(str(p) for p in report.problems)
    assert "not_video" in problems and "image/webp+animated" in problems
    # and what ingest runs on each stored object (probe, then sample_frames) reads it
    for item in by_sha.values():
        local = tmp_path / f"stored {item.sha256[:8]}{Path(item.media_key).suffix}"
        store.download(item.media_key, local)
        facts = probe(local)
        frames = sample_frames(local, tmp_path / "frames" / item.sha256, n_frames=4, max_side=64, max_pixels=64 * 64)
        assert facts.frame_count >= 4 and len(frames.frame_paths) == 4
