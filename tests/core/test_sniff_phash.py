"""Content sniffing and perceptual hashing: pure functions, checked on real files and by property."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.support import media_factory as mf
from vigil.core import phash, sniff
from vigil.core.phash import frame_phash, hamming, is_near_duplicate, video_distance, video_phash_from_frames
from vigil.core.sniff import ACCEPTED_VIDEO_TYPES, SNIFF_BYTES, sniff_media_type


def head(path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(SNIFF_BYTES)


# ---------------------------------------------------------------------------- sniff


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sniff")
    mp4 = mf.make_mp4(d, n_frames=4)
    mkv = d / "clip.mkv"
    mf.ffmpeg("-i", str(mp4), "-c", "copy", str(mkv))
    avi = d / "clip.avi"
    mf.ffmpeg("-i", str(mp4), "-c:v", "mpeg4", str(avi))
    ts = d / "clip.ts"
    mf.ffmpeg("-i", str(mp4), "-c", "copy", str(ts))
    jpeg = d / "still.mp4"
    Image.fromarray(mf.pattern_frames(1, 32, 24)[0]).save(jpeg, format="JPEG")
    return {
        "video/mp4": mp4,
        "video/quicktime": mf.make_clip(d, "clip.mov", n_frames=4),
        "video/webm": mf.make_webm(d, n_frames=4),
        "video/x-matroska": mkv,
        "image/gif": mf.make_gif(d, n_frames=4),
        "video/x-msvideo": avi,
        "video/mp2t": ts,
        "image/apng": mf.make_apng(d, n_frames=3),
        "image/webp+animated": mf.make_animated_webp(d, n_frames=3),
        "image/webp": mf.make_still_webp(d),
        "text/html": mf.make_html_as_mp4(d),
        "application/json": mf.make_json_as_mp4(d),
        "image/png": mf.make_png_as_mp4(d),
        "image/jpeg": jpeg,
    }


@pytest.mark.parametrize(
    "expected",
    ["video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "image/gif", "video/x-msvideo",
     "video/mp2t", "image/apng", "image/webp+animated", "image/webp", "text/html", "application/json",
     "image/png", "image/jpeg"],
)
def test_sniff_names_real_files_by_content_not_extension(files, expected):
    assert sniff_media_type(head(files[expected])) == expected


def test_accepted_types_are_the_containers_the_bundled_ffmpeg_decodes(files):
    # given real files of every kind; animated WebP is left out: PyAV's FFmpeg cannot decode it
    accepted = {mime for mime in files if sniff_media_type(head(files[mime])) in ACCEPTED_VIDEO_TYPES}
    assert accepted == {"video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "image/gif",
                        "video/x-msvideo", "video/mp2t", "image/apng"}
    # then every accepted type has a store suffix and every rejected one a reason
    assert set(sniff.MEDIA_SUFFIXES) == ACCEPTED_VIDEO_TYPES
    for mime in set(files) - accepted:
        assert sniff.describe_rejected(mime) == sniff.REJECTED_TYPES[mime]


def test_apng_is_told_from_a_still_png_even_behind_a_colour_profile(tmp_path):
    # given an APNG whose acTL chunk follows a 3 kB ICC profile, and a still PNG with the same
    frames = [Image.fromarray(f) for f in mf.pattern_frames(3, 32, 24)]
    profile = bytes(range(256)) * 12
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], icc_profile=profile)
    frames[0].save(tmp_path / "s.png", icc_profile=profile)
    data = (tmp_path / "a.png").read_bytes()
    assert data.index(b"iCCP") < data.index(b"acTL") < data.index(b"IDAT")
    # then only the animated one is accepted
    assert sniff_media_type(head(tmp_path / "a.png")) == "image/apng"
    assert sniff_media_type(head(tmp_path / "s.png")) == "image/png"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", None),
        (b"\xef\xbb\xbf\n  <html lang='en'><head>", "text/html"),
        (b"<!-- cdn --><HTML>", "text/html"),
        (b"\n[1, 2, 3]", "application/json"),
        (b"{\x00\x01\x02binary", None),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", "audio/mp4"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"ftyp", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(17) + b"\x00\x00\x00\x08acTL", "image/apng"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(17) + b"\x00\x00\x00\x00IDAT" + bytes(4) + b"acTL", "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x10\x00\x00\x00", "image/webp"),
        (bytes(4) + b"\x47" + bytes(191) + b"\x47" + bytes(191) + b"\x47", "video/mp2t"),
        (b"\x47" + bytes(187) + b"\x48" + bytes(187), None),
    ],
)
def test_sniff_edge_cases(data, expected):
    assert sniff_media_type(data) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=SNIFF_BYTES))
def test_sniff_never_raises_and_answers_a_mime_type_or_none(data):
    result = sniff_media_type(data)
    assert result is None or ("/" in result and result == result.strip())


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_sniff_survives_a_cut_ebml_header(tail):
    assert sniff_media_type(b"\x1a\x45\xdf\xa3" + tail) in ("video/webm", "video/x-matroska")


# ---------------------------------------------------------------------------- phash


def test_frame_phash_is_stable_under_resize_and_mild_noise():
    frame = mf.pattern_frames(1, 320, 240, seed=5)[0]
    small = np.asarray(Image.fromarray(frame).resize((112, 84), Image.BILINEAR))
    noisy = np.clip(frame + np.random.default_rng(0).normal(0, 6, frame.shape), 0, 255)
    original = frame_phash(frame)
    assert hamming(original, frame_phash(small)) <= 4
    assert hamming(original, frame_phash(noisy)) <= 4


def test_frame_phash_separates_different_pictures():
    a = frame_phash(mf.pattern_frames(1, 160, 120, seed=1)[0])
    b = frame_phash(mf.pattern_frames(1, 160, 120, seed=2)[0])
    assert hamming(a, b) > 12


def test_video_hash_is_frames_concatenated_and_distance_is_mean_per_frame():
    frames = list(mf.pattern_frames(3, 64, 48, seed=4))
    video = video_phash_from_frames(frames)
    assert len(video) == 16 * 3 and video[:16] == frame_phash(frames[0])
    flipped = video_phash_from_frames([frames[0], frames[1], frames[2][:, ::-1]])
    assert video_distance(video, flipped) == pytest.approx(hamming(video[32:], flipped[32:]) / 3)


hex_hash = st.integers(0, 2**64 - 1).map(lambda v: f"{v:016x}")


@given(st.lists(hex_hash, min_size=3, max_size=3), st.lists(hex_hash, min_size=3, max_size=3))
def test_distance_is_a_symmetric_bounded_metric(a_frames, b_frames):
    a, b = "".join(a_frames), "".join(b_frames)
    assert video_distance(a, a) == 0 and is_near_duplicate(a, a, max_distance=0)
    assert video_distance(a, b) == video_distance(b, a)
    assert 0 <= video_distance(a, b) <= 64
    assert hamming(a, b) == hamming(b, a) <= 64 * 3


def test_hashes_of_different_shape_are_refused():
    with pytest.raises(ValueError):
        hamming("00", "000")
    with pytest.raises(ValueError):
        video_distance("0" * 32, "0" * 48)
    with pytest.raises(ValueError):
        video_distance("abc", "abc")


@pytest.mark.parametrize("module", [sniff, phash])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0
