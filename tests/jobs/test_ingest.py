"""The ingest job (vigil.jobs.ingest): bad rows quarantined one by one, batch failures that say what to
change, operator exclusions, raw objects missing from the store, and store failures that never
become a verdict on a clip.

Clips are real media made by tests/support/media_factory and recorded in the store the way the
crawler records them (raw object content-addressed, one provenance record per sighting).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from tests.support import media_factory as mf
from tests.support.workspaces import small_doc
from vigil.config.errors import ConflictError, InputError, NotFoundError
from vigil.config.params import parse_params
from vigil.core.hashing import sha256_bytes, sha256_file
from vigil.core.records import CrawledItem, provenance_key
from vigil.io.ledger import read_events, verify_ledger
from vigil.io.media.perceptual_hash import video_phash
from vigil.io.store import LocalStore, ObjectStore, StoreError, put_content_addressed
from vigil.jobs.ingest import exclude_sample, ingest, scratch_media_path
from vigil.jobs.runtime import runtime_for

GENERATORS = ("lumen-v1", "nova-6")
MEDIA_TYPES = {".mp4": "video/mp4", ".gif": "image/gif"}


def params(**validation):
    doc = small_doc()
    doc["ingest"].update({"frames": 4, "workers": 2})
    doc["validation"].update(validation)
    return parse_params(doc)


def add_crawled(store: ObjectStore, path: Path, *, label: str, generator: str, pair_id: str | None,
                source: str = "test") -> str:
    """Record ``path`` as the crawler would: raw object by sha256, then its provenance record."""
    key, _ = put_content_addressed(store, path, prefix="raw", suffix=path.suffix, content_type=MEDIA_TYPES[path.suffix])
    sha = sha256_file(path)
    url = f"https://clips.example.test/{sha[:12]}{path.suffix}"
    item = CrawledItem(sha256=sha, media_key=key, media_type=MEDIA_TYPES[path.suffix], size=path.stat().st_size,
                       source=source, domain="clips.example.test", media_url=url, final_url=url,
                       fetched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), phash=video_phash(path),
                       generator=generator, label=label, pair_id=pair_id)
    store.put_json(provenance_key(sha, sha256_bytes(url.encode())), item.model_dump(mode="json"))
    return sha


def add_good_pairs(store: ObjectStore, media_dir: Path, n_pairs: int = 4, seed0: int = 0) -> list[str]:
    """``n_pairs`` real/fake pairs over two generators: a batch that passes validation."""
    media_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n_pairs):
        real = mf.make_mp4(media_dir, f"real-{seed0 + i}.mp4", n_frames=12, seed=100 + seed0 + 2 * i)
        fake = mf.make_mp4(media_dir, f"fake-{seed0 + i}.mp4", n_frames=12, seed=101 + seed0 + 2 * i)
        ids.append(add_crawled(store, real, label="real", generator="real", pair_id=f"pair-{seed0 + i}"))
        ids.append(add_crawled(store, fake, label="fake", generator=GENERATORS[i % 2], pair_id=f"pair-{seed0 + i}"))
    return ids


def mdhd_timescale_zero(media_dir: Path) -> Path:
    """An MP4 whose media header (``mdhd``) claims a timescale of 0."""
    data = bytearray(mf.make_mp4(media_dir, "ts0-source.mp4", seed=77).read_bytes())
    at = data.find(b"mdhd")
    offset = at + 4 + 4 + (16 if data[at + 4] == 1 else 8)  # version/flags, then two times of 4 or 8 bytes
    data[offset:offset + 4] = b"\0\0\0\0"
    path = media_dir / "ts0.mp4"
    path.write_bytes(bytes(data))
    return path


def bad_rows(store: ObjectStore, media_dir: Path) -> dict[str, str]:
    """Clips whose media or claims fail a row-level expectation → the column each must be refused on."""
    media_dir.mkdir(parents=True, exist_ok=True)
    clips = {
        "fps": mf.make_mp4(media_dir, "slow.mp4", fps=0.5, n_frames=3, seed=61),
        "width": mf.make_mp4(media_dir, "tiny.mp4", width=8, height=8, n_frames=12, seed=62),
        "gif-width": mf.make_gif(media_dir, "dot.gif", width=1, height=1, n_frames=5000, seed=63),
        "ts0-fps": mdhd_timescale_zero(media_dir),
        "generator": mf.make_mp4(media_dir, "sora.mp4", n_frames=12, seed=64),
    }
    out = {}
    for case, path in clips.items():
        generator = "sora-9000" if case == "generator" else GENERATORS[0]
        label = "real" if case == "ts0-fps" else "fake"
        sha = add_crawled(store, path, label=label, generator="real" if label == "real" else generator, pair_id=None)
        out[sha] = case.split("-")[-1]
    return out


def manifest_ids(rt, tag: str) -> set[str]:
    from vigil.io.registry import open_registry, read_manifest_at

    return set(read_manifest_at(open_registry(rt.workspace / "registry", rt.store), tag)["sample_id"])


def record_prefix(store: ObjectStore, sample_id: str) -> str:
    """The quarantine prefix holding ``sample_id``'s reason record."""
    for key in store.list_keys("quarantine/"):
        if key.endswith("/reason.json") and store.get_json(key).get("sample_id") == sample_id:
            return key.removesuffix("/reason.json")
    raise AssertionError(f"no quarantine record for {sample_id}")


def events(rt, action: str) -> list:
    return [e for e in read_events(rt.ledger.store) if e.action == action]


def test_download_scratch_names_differ_per_call(tmp_path):
    # given one sample folder; when two downloads ask for a scratch name; then no two share one
    first, second = (scratch_media_path(tmp_path, "raw/ab/abc.mp4") for _ in range(2))
    assert first != second
    assert first.parent == tmp_path and first.suffix == ".mp4" and first.name.startswith(".")


def test_bad_rows_are_quarantined_one_by_one_and_the_rest_published(tmp_path):
    # given 8 good clips and 5 that each fail a row-level expectation (0.5 fps, 8x8, a 1x1 GIF of
    # 5,000 frames, an mdhd timescale of 0, a claimed generator no one allows)
    store = LocalStore(tmp_path / "store")
    rt = runtime_for(tmp_path / "ws", params(), store)
    good = add_good_pairs(store, tmp_path / "media")
    bad = bad_rows(store, tmp_path / "bad")

    # when ingest runs
    report = ingest(rt)

    # then the good clips are published and each bad one is quarantined, named, with its reason
    assert report.status == "published", report.validation_summary
    assert manifest_ids(rt, report.version_tag) == set(good)
    quarantined = {p.sample_id: p for p in report.quarantined_rows}
    assert set(quarantined) == set(bad), report.problems
    for sha, column in bad.items():
        problem = quarantined[sha]
        kind = "in_set" if column == "generator" else "between"
        assert problem.reason == f"validation:expect_column_values_to_be_{kind}({column})"
        assert problem.stage == "validate" and column in problem.detail
        record = store.get_json(f"{problem.quarantine_key}/reason.json")
        assert record["sample_id"] == sha and record["stage"] == "validate" and record["column"] == column
        assert (rt.workspace / "ingest" / "samples" / sha / "quarantined.json").is_file()
    slow = next(quarantined[s] for s, c in bad.items() if c == "fps" and "0.5" in quarantined[s].detail)
    assert "validation.min_fps" in slow.detail
    sora = next(quarantined[s] for s, c in bad.items() if c == "generator")
    assert "'sora-9000'" in sora.detail and "validation.allowed_generators" in sora.detail
    assert "crawl.sources[test].generator" in sora.detail  # or name it on the source it came from
    assert len(events(rt, "dataset.publish")) == 1 and not events(rt, "dataset.reject")

    # and a re-run skips them from the cache: nothing changes, and they are still reported
    again = ingest(rt)
    assert again.status == "unchanged" and again.version_tag == report.version_tag
    assert {p.sample_id for p in again.quarantined_rows} == set(bad)

    # and a change to the validation settings judges the cached verdicts again
    relaxed = ingest(runtime_for(tmp_path / "ws", params(min_fps=0.4), store))
    assert relaxed.status == "published"
    assert manifest_ids(rt, relaxed.version_tag) == set(good) | {slow.sample_id}  # 0.5 fps now allowed


def test_a_batch_failure_rejects_and_names_the_setting_to_change(tmp_path):
    # given a good batch of 8 rows but validation.min_rows = 50
    store = LocalStore(tmp_path / "store")
    rt = runtime_for(tmp_path / "ws", params(min_rows=50), store)
    add_good_pairs(store, tmp_path / "media")

    # when ingest runs
    report = ingest(rt)

    # then the batch is rejected, not published, and the report says what to change
    assert report.status == "rejected" and not report.published
    assert report.batch_problems == ("expect_table_row_count_to_be_between: validation.min_rows = 50 but the batch "
                                     "has 8 rows: crawl more or lower validation.min_rows in params.yaml",)
    assert "lower validation.min_rows in params.yaml" in report.validation_summary
    assert len(events(rt, "dataset.reject")) == 1 and not events(rt, "dataset.publish")
    assert not report.quarantined_rows  # no clip is blamed for a batch that is too small


def test_exclude_leaves_a_sample_out_of_the_next_version(tmp_path, clean_env):
    # given a published version of 8 clips, run from the command line's settings
    from typer.testing import CliRunner

    from vigil.cli import app

    ws = tmp_path / "ws"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(json.loads(params().model_dump_json())))
    clean_env.setenv("VIGIL_WORKSPACE", str(ws))
    clean_env.setenv("VIGIL_PARAMS_FILE", str(params_file))
    store = LocalStore(ws / "store")
    ids = add_good_pairs(store, tmp_path / "media")
    rt = runtime_for(ws, params(), store)
    first = ingest(rt)
    assert first.status == "published"
    victim = ids[3]

    # when an operator excludes one sample by a 10-character prefix
    result = CliRunner().invoke(app, ["data", "exclude", victim[:10], "--reason", "wrong label: a real clip"])

    # then it is recorded (quarantine record, cache, ledger) and the next ingest publishes without it
    assert result.exit_code == 0, result.output
    assert victim in result.output and first.version_tag in result.output
    (event,) = events(rt, "dataset.exclude")
    assert event.inputs == {"sample_id": victim, "reason": "wrong label: a real clip"}
    cached = json.loads((ws / "ingest" / "samples" / victim / "quarantined.json").read_text())
    assert cached["reason"] == "excluded" and "wrong label: a real clip" in cached["detail"]
    records = [store.get_json(k) for k in store.list_keys("quarantine/") if k.endswith("/reason.json")]
    (record,) = [r for r in records if r.get("sample_id") == victim]
    assert record["reason"] == "excluded" and record["operator_reason"] == "wrong label: a real clip"
    assert event.outputs["quarantine"].endswith(record_prefix(store, victim))
    second = ingest(rt)
    assert second.status == "published" and second.version_tag != first.version_tag
    assert manifest_ids(rt, second.version_tag) == set(ids) - {victim}
    assert verify_ledger(rt.ledger.store).ok


def test_exclude_refuses_short_unknown_and_ambiguous_ids(tmp_path):
    # given crawled clips (never ingested)
    store = LocalStore(tmp_path / "store")
    rt = runtime_for(tmp_path / "ws", params(), store)
    ids = add_good_pairs(store, tmp_path / "media", n_pairs=1)
    # a sample folder whose id shares a long prefix with a crawled one: an ambiguous prefix
    twin = ids[0][:10] + ("1" if ids[0][10] == "0" else "0") * 54
    (rt.workspace / "ingest" / "samples" / twin).mkdir(parents=True)
    unknown = next(c * 12 for c in "0123456789abcdef" if not any(i.startswith(c * 12) for i in ids))

    # when / then: each bad id is refused with a message that says what to give instead
    with pytest.raises(InputError, match="at least 8"):
        exclude_sample(rt, ids[0][:6], "dup")
    with pytest.raises(NotFoundError, match="no crawled sample"):
        exclude_sample(rt, unknown, "dup")
    with pytest.raises(InputError, match="matches 2 samples"):
        exclude_sample(rt, ids[0][:10], "dup")
    with pytest.raises(InputError, match="--reason"):
        exclude_sample(rt, ids[1], "  ")
    # and a sample never prepared is excluded all the same (its cache folder is created)
    done = exclude_sample(rt, ids[1][:8], "licence withdrawn")
    assert done.sample_id == ids[1] and done.in_latest_version is None
    assert (rt.workspace / "ingest" / "samples" / ids[1] / "quarantined.json").is_file()


def test_a_missing_raw_object_is_left_out_for_one_run_only(store, tmp_path):
    # given 8 crawled clips, one of whose raw objects is gone from the store
    rt = runtime_for(tmp_path / "ws", params(), store)
    ids = add_good_pairs(store, tmp_path / "media")
    victim = ids[2]
    item = CrawledItem.model_validate(store.get_json(next(store.list_keys(f"provenance/{victim[:2]}/{victim}/"))))
    backup = tmp_path / "backup.mp4"
    store.download(item.media_key, backup)
    store.delete(item.media_key)

    # when ingest runs: the sample is quarantined as missing_raw, naming the key, and the rest published
    report = ingest(rt)
    assert report.status == "published"
    (problem,) = report.problems
    assert problem.sample_id == victim and problem.reason == "missing_raw" and item.media_key in problem.detail
    assert store.get_json(f"{problem.quarantine_key}/reason.json")["reason"] == "missing_raw"
    assert not (rt.workspace / "ingest" / "samples" / victim / "quarantined.json").exists()
    assert manifest_ids(rt, report.version_tag) == set(ids) - {victim}

    # and once the object is restored, the next ingest picks it up
    store.put_file(item.media_key, backup)
    restored = ingest(rt)
    assert restored.status == "published" and not restored.problems
    assert manifest_ids(rt, restored.version_tag) == set(ids)


class FailingReads(LocalStore):
    """A local store whose reads of raw objects fail the way a throttled S3 endpoint's do."""

    def download(self, key, path):
        if key.startswith("raw/"):
            raise StoreError(f"read of {self.uri(key)} failed: SlowDown")
        return super().download(key, path)


def test_a_store_failure_fails_the_run_and_caches_no_verdict(tmp_path):
    # given crawled clips and a store that cannot serve raw objects right now
    good_store = LocalStore(tmp_path / "store")
    ids = add_good_pairs(good_store, tmp_path / "media", n_pairs=1)
    flaky = runtime_for(tmp_path / "ws", params(), FailingReads(tmp_path / "store"))

    # when ingest runs: the store error propagates and no clip is marked quarantined
    with pytest.raises(StoreError, match="SlowDown"):
        ingest(flaky)
    assert not list((tmp_path / "ws" / "ingest" / "samples").glob("*/quarantined.json"))
    assert not list(good_store.list_keys("quarantine/"))

    # then a later run with the store back publishes every clip
    report = ingest(runtime_for(tmp_path / "ws", params(), good_store))
    assert report.status == "published" and report.n_samples == len(ids)


def test_a_second_ingest_while_one_runs_is_refused_naming_the_lock(tmp_path):
    # given an ingest holding the workspace's lock (another process's, seen from here)
    from vigil.io.locks import workspace_lock

    store = LocalStore(tmp_path / "store")
    rt = runtime_for(tmp_path / "ws", params(), store)
    add_good_pairs(store, tmp_path / "media", n_pairs=1)
    held, release = threading.Event(), threading.Event()

    def holder():
        with workspace_lock(rt.workspace, "ingest"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(30)
        # when another ingest starts; then it is refused at once, naming the lock, having done nothing
        with pytest.raises(ConflictError, match="another ingest run"):
            ingest(rt)
        assert not (rt.workspace / "ingest" / "samples").exists()
    finally:
        release.set()
        thread.join(30)
