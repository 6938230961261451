"""Build small real media files for tests: good clips of every accepted kind and the bad inputs a
crawler meets. Each ``make_*`` takes a directory (pytest's ``tmp_path``) and returns the file path.

Clips show :func:`pattern_frames`: a seeded smooth colour field that pans, a moving red square, mild
noise (so codecs do real work), and a white marker block in the **top-left** corner of the upright
picture, so a test can tell orientation. Different seeds give perceptually different clips (their
phashes are far apart); the same seed re-encoded or resized stays near.

Used by the media tests and by the crawler/ingest tests; keep every file a few kB and under a
second to make.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from vigil.io.encode import write_video

#: Fraction of each side covered by the orientation marker in the top-left corner.
MARKER_FRACTION = 1 / 5


def pattern_frames(n_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """(n_frames, height, width, 3) uint8 frames, every frame different, top-left marker white."""
    rng = np.random.default_rng(seed)
    field = 30 + 190 * _mosaic(rng, height, 2 * width)  # twice as wide as the frame: it pans
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    square = max(2, min(width, height) // 5)
    marker_h, marker_w = max(2, int(height * MARKER_FRACTION)), max(2, int(width * MARKER_FRACTION))
    for t in range(n_frames):
        offset = (t * max(1, width // max(n_frames, 1))) % width
        frame = field[:, offset : offset + width].copy()
        frame += rng.normal(0, 3, frame.shape[:2])[..., None]
        x = int((width - square) * t / max(1, n_frames - 1))
        y = (height - square) // 2
        frame[y : y + square, x : x + square] = (220, 40, 40)
        frame[:marker_h, :marker_w] = 255
        frames[t] = np.clip(frame, 0, 255)
    return frames


def _mosaic(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A (height, width, 3) mosaic of 5 x 12 random colour tiles: coarse structure that differs
    from seed to seed (so perceptual hashes of different seeds are far apart) and costs no time."""
    tiles = rng.random((5, 12, 3)).astype(np.float32)
    tile_h, tile_w = -(-height // 5), -(-width // 12)
    return tiles.repeat(tile_h, axis=0).repeat(tile_w, axis=1)[:height, :width]


def make_clip(
    directory: Path,
    name: str = "clip.mp4",
    *,
    n_frames: int = 24,
    width: int = 160,
    height: int = 120,
    fps: float = 24.0,
    seed: int = 0,
    **write_options,
) -> Path:
    """A pattern clip; the suffix of ``name`` picks the container (.mp4 .mov .mkv .webm .avi .ts .gif).
    ``write_options`` go to :func:`vigil.io.encode.write_video` (gop, crf, rotation, pix_fmt...)."""
    frames = pattern_frames(n_frames, width, height, seed)
    return write_video(frames, fps, Path(directory) / name, **write_options)


def make_mp4(directory: Path, name: str = "clip.mp4", **options) -> Path:
    """160x120, 24 frames at 24 fps, H.264 with x264's default GOP (one keyframe here)."""
    return make_clip(directory, name, **options)


def make_webm(directory: Path, name: str = "clip.webm", **options) -> Path:
    """VP9 in WebM: no frame count in the container, so probe estimates it."""
    return make_clip(directory, name, **options)


def make_gif(directory: Path, name: str = "clip.gif", **options) -> Path:
    """Animated GIF, 12 frames at 10 fps (GIF delays are in 1/100 s)."""
    options.setdefault("n_frames", 12)
    options.setdefault("fps", 10.0)
    return make_clip(directory, name, **options)


def make_short_gop_mp4(directory: Path, name: str = "short_gop.mp4", **options) -> Path:
    """Every frame a keyframe (GOP 1): the seek strategy's best case."""
    options.setdefault("n_frames", 48)
    return make_clip(directory, name, gop=1, **options)


def make_long_gop_mp4(directory: Path, name: str = "long_gop.mp4", **options) -> Path:
    """One keyframe for the whole clip: seeking cannot skip anything, one pass is cheapest."""
    options.setdefault("n_frames", 48)
    return make_clip(directory, name, gop=1000, **options)


def make_4k_mp4(directory: Path, name: str = "clip_4k.mp4", n_frames: int = 3) -> Path:
    """3840x2160, a few frames, x264 ultrafast so that it takes about a second to make (the
    pattern is drawn at 960x540 and blown up 4x)."""
    frames = pattern_frames(n_frames, 960, 540).repeat(4, axis=1).repeat(4, axis=2)
    return write_video(frames, 24.0, Path(directory) / name, preset="ultrafast")


def make_rotated_mp4(directory: Path, name: str = "rotated.mp4", rotation: int = 90, **options) -> Path:
    """A portrait phone clip: upright picture 96x160 (marker top-left), stored turned
    counter-clockwise by ``rotation`` with a display matrix telling players to turn it back."""
    upright = pattern_frames(options.pop("n_frames", 12), options.pop("width", 96), options.pop("height", 160))
    stored = np.ascontiguousarray(np.rot90(upright, k=rotation // 90, axes=(1, 2)))
    return write_video(stored, options.pop("fps", 24.0), Path(directory) / name, rotation=rotation, **options)


def make_odd_sized_mp4(directory: Path, name: str = "odd.mp4", width: int = 161, height: int = 121) -> Path:
    """Odd width and height: H.264 allows them with 4:4:4 chroma (4:2:0 needs even sizes)."""
    return make_clip(directory, name, n_frames=12, width=width, height=height, pix_fmt="yuv444p")


def make_avi(directory: Path, name: str = "clip.avi", codec: str = "mpeg4", **options) -> Path:
    """AVI, 160x120, 24 frames at 24 fps, with B-frames: ``codec="mpeg4"`` (MPEG-4 part 2, two
    B-frames, as Xvid writes it) or ``"h264"``. AVI stores no presentation timestamps (FFmpeg
    numbers packets in decode order), so with B-frames only the frame's position says when it is
    shown."""
    if codec not in ("mpeg4", "h264"):
        raise ValueError(f"codec must be 'mpeg4' or 'h264', got {codec!r}")
    if codec == "h264":
        return make_clip(directory, name, codec="libx264", **options)
    options.setdefault("b_frames", 2)
    return make_clip(directory, name, codec="mpeg4", **options)


def make_mkv(directory: Path, name: str = "clip.mkv", **options) -> Path:
    """H.264 in Matroska (no frame count in the container, millisecond timestamps)."""
    return make_clip(directory, name, **options)


def make_ts(directory: Path, name: str = "clip.ts", *, m2ts: bool = False, **options) -> Path:
    """H.264 in MPEG-TS (its first timestamp is not 0); ``m2ts`` rewrites it as 192-byte M2TS
    packets (Blu-ray, AVCHD cameras) with the ffmpeg binary."""
    if not m2ts:
        return make_clip(directory, name, **options)
    plain = make_clip(directory, f"plain_{Path(name).stem}.ts", **options)
    path = Path(directory) / name
    ffmpeg("-i", str(plain), "-c", "copy", "-f", "mpegts", "-mpegts_m2ts_mode", "1", str(path))
    plain.unlink()
    return path


def make_vfr_gif(directory: Path, name: str = "vfr.gif", *, n_frames: int = 12,
                 delays_cs: tuple[int, ...] = (4, 5), width: int = 64, height: int = 48, seed: int = 0) -> Path:
    """An animated GIF whose frame delays cycle through ``delays_cs`` (1/100 s each): 4 and 5 cs
    alternating is 22.2 fps, though its first delay says 25."""
    from PIL import Image

    frames = [Image.fromarray(frame) for frame in pattern_frames(n_frames, width, height, seed)]
    durations = [10 * delays_cs[i % len(delays_cs)] for i in range(n_frames)]  # PIL takes ms
    path = Path(directory) / name
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
                   loop=0, disposal=1, optimize=False)
    return path


def make_edit_list_mp4(directory: Path, name: str = "edit_list.mp4", *, cut_s: float = 0.25) -> Path:
    """An mp4 cut by stream copy at ``cut_s`` (``ffmpeg -ss 0.25 -c copy``), as download tools
    trim clips: the copy keeps the GOP from the keyframe before the cut and an edit list (``elst``)
    that hides the frames before it, so the sample table holds more frames than a player shows
    (48 stored, 42 shown for the defaults)."""
    source = make_clip(directory, f"uncut_{name}", n_frames=48, gop=48)
    path = Path(directory) / name
    ffmpeg("-ss", str(cut_s), "-i", str(source), "-c", "copy", str(path))
    source.unlink()
    return path


def make_apng(directory: Path, name: str = "clip.png", *, n_frames: int = 8,
              delays_ms: tuple[int, ...] = (40, 50), width: int = 64, height: int = 48, seed: int = 0) -> Path:
    """An animated PNG (``acTL`` chunk before the image data) with per-frame delays, made by PIL."""
    return _animated_image(directory, name, "PNG", n_frames, delays_ms, width, height, seed)


def make_animated_webp(directory: Path, name: str = "clip.webp", *, n_frames: int = 8,
                       delays_ms: tuple[int, ...] = (40, 50), width: int = 64, height: int = 48,
                       seed: int = 0) -> Path:
    """An animated WebP (VP8X animation flag, ANIM/ANMF chunks), made by PIL. PyAV's bundled FFmpeg
    cannot decode it, so Vigil rejects it (the ffmpeg binary of imageio-ffmpeg can)."""
    return _animated_image(directory, name, "WEBP", n_frames, delays_ms, width, height, seed)


def make_still_webp(directory: Path, name: str = "still.webp") -> Path:
    """A still WebP image (a thumbnail)."""
    from PIL import Image

    path = Path(directory) / name
    Image.fromarray(pattern_frames(1, 64, 48)[0]).save(path, format="WEBP")
    return path


def _animated_image(directory: Path, name: str, fmt: str, n_frames: int, delays_ms: tuple[int, ...],
                    width: int, height: int, seed: int) -> Path:
    from PIL import Image

    frames = [Image.fromarray(frame) for frame in pattern_frames(n_frames, width, height, seed)]
    path = Path(directory) / name
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], loop=0,
                   duration=[delays_ms[i % len(delays_ms)] for i in range(n_frames)])
    return path


def make_empty_file(directory: Path, name: str = "empty.mp4") -> Path:
    """A zero-byte download."""
    path = Path(directory) / name
    path.write_bytes(b"")
    return path


def make_html_as_mp4(directory: Path, name: str = "error_page.mp4") -> Path:
    """The HTML error page a CDN serves with ``Content-Type: video/mp4``."""
    path = Path(directory) / name
    path.write_text(
        "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
        "<body><h1>Not Found</h1><p>The requested video was removed.</p></body></html>\n"
    )
    return path


def make_json_as_mp4(directory: Path, name: str = "api_error.mp4") -> Path:
    """A JSON API error body saved under the video's name."""
    path = Path(directory) / name
    path.write_text('{"error": {"code": 403, "message": "signed URL expired"}}\n')
    return path


def make_png_as_mp4(directory: Path, name: str = "thumbnail.mp4") -> Path:
    """A still image (the thumbnail) saved where the video should be."""
    from PIL import Image

    path = Path(directory) / name
    Image.fromarray(pattern_frames(1, 64, 48)[0]).save(path, format="PNG")
    return path


def make_truncated_mp4(directory: Path, name: str = "truncated.mp4", *, moov_first: bool = False) -> Path:
    """An mp4 cut in half, as an interrupted download leaves it. With x264/FFmpeg defaults the
    ``moov`` index is at the end, so the half has none; ``moov_first`` (faststart, as streaming
    sites serve) keeps the index but cuts the media data it points into."""
    full = make_clip(directory, f"full_{name}", n_frames=48, faststart=moov_first)
    data = full.read_bytes()
    full.unlink()
    path = Path(directory) / name
    path.write_bytes(data[: len(data) // 2])
    return path


def make_truncated_webm(directory: Path, name: str = "truncated.webm") -> Path:
    """A WebM cut in half (its Segment declares more bytes than remain)."""
    full = make_clip(directory, f"full_{name}", n_frames=48)
    data = full.read_bytes()
    full.unlink()
    path = Path(directory) / name
    path.write_bytes(data[: len(data) // 2])
    return path


def make_corrupt_mp4(directory: Path, name: str = "corrupt.mp4") -> Path:
    """A complete-looking mp4 (every box whole) whose ``moov`` index is overwritten with noise:
    the magic bytes say mp4, FFmpeg cannot make sense of it."""
    path = make_clip(directory, name, n_frames=12, faststart=True)
    data = bytearray(path.read_bytes())
    moov = data.find(b"moov") - 4
    size = int.from_bytes(data[moov : moov + 4], "big")
    noise = np.random.default_rng(7).integers(0, 256, size - 8, dtype=np.uint8).tobytes()
    data[moov + 8 : moov + size] = noise
    path.write_bytes(bytes(data))
    return path


def make_audio_only_mp4(directory: Path, name: str = "audio_only.mp4") -> Path:
    """One second of a 440 Hz tone in AAC, in an mp4 with no video track."""
    path = Path(directory) / name
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path))
    return path


def make_clip_with_audio(directory: Path, name: str = "with_audio.mp4") -> Path:
    """A pattern clip muxed with a tone: has_audio is True."""
    video = make_mp4(directory, f"video_{name}")
    path = Path(directory) / name
    ffmpeg("-i", str(video), "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
           "-c:v", "copy", "-c:a", "aac", "-shortest", str(path))
    video.unlink()
    return path


def reencode(source: Path, target: Path, *, width: int | None = None, crf: int = 30) -> Path:
    """A re-upload: the same clip re-encoded with the ffmpeg binary (lower quality, other size)."""
    scale = ["-vf", f"scale={width}:-2"] if width else []
    ffmpeg("-i", str(source), *scale, "-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p", str(target))
    return target


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg binary that imageio-ffmpeg ships (quiet, overwrite), raising on failure."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()}")
