"""Checking a media file's container and opening it, before and around FFmpeg.

Cheap checks run on the raw bytes first (size, magic bytes, and whether the container is complete:
the top-level ISO BMFF boxes of MP4/MOV, the EBML Segment size of WebM/Matroska), so that an empty
download, an HTML page or a cut-off file is refused without FFmpeg; then :func:`open_container` opens
the file with PyAV and :func:`video_stream` picks its video stream, both mapping FFmpeg's failures to
:class:`~vigil.io.media.errors.MediaError` reasons and refusing decompression bombs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import av.error

from vigil.core.sniff import REJECTED_TYPES, SNIFF_BYTES, describe_rejected, sniff_media_type
from vigil.io.media.errors import MediaError

#: Streams above this many pixels per frame are refused (``too_large``) before any decode:
#: a decompression bomb in a 1 KB file would otherwise take the worker's memory.
MAX_STREAM_PIXELS = 8192 * 8192

#: Sniffed types that are audio: they reach the demuxer, which reports ``no_video_stream``.
_AUDIO_TYPES = frozenset({"audio/mp4", "audio/wav"})


def _read_head(path: Path) -> tuple[bytes, int]:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES), size
    except FileNotFoundError:
        raise MediaError("not_found", f"{path} does not exist") from None
    except IsADirectoryError:
        raise MediaError("unreadable", f"{path} is a directory") from None
    except OSError as exc:
        raise MediaError("unreadable", f"cannot read {path}: {exc}") from None


def check_file(path: Path, max_bytes: int | None) -> tuple[str | None, int]:
    """Cheap checks before FFmpeg sees the file: size, magic bytes, container completeness."""
    head, size = _read_head(path)
    if size == 0:
        raise MediaError("empty_file", f"{path.name} is 0 bytes")
    if max_bytes is not None and size > max_bytes:
        raise MediaError("too_large", f"{path.name} is {size} bytes, over the {max_bytes}-byte limit")
    mime = sniff_media_type(head)
    if mime in REJECTED_TYPES and mime not in _AUDIO_TYPES:
        raise MediaError("not_media", f"{path.name} is {describe_rejected(mime)}, not a video")
    truncation = _truncation(path, mime, size)
    if truncation:
        raise MediaError("truncated", f"{path.name}: {truncation}")
    return mime, size


def _truncation(path: Path, mime: str | None, size: int) -> str | None:
    """Explain why the container is cut short, or None. Reads a few headers, not the media."""
    with open(path, "rb") as fh:
        if mime in ("video/mp4", "video/quicktime", "audio/mp4"):
            return _iso_bmff_truncation(fh, size)
        if mime in ("video/webm", "video/x-matroska"):
            return _ebml_truncation(fh, size)
    return None


def _iso_bmff_truncation(fh, size: int) -> str | None:
    """Walk the top-level boxes: a box reaching past the end, or no ``moov`` index, means a cut
    download (x264/FFmpeg write ``moov`` last, so the first half of a file has none)."""
    offset, seen = 0, set()
    while offset + 8 <= size:
        fh.seek(offset)
        header = fh.read(16)
        box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
        if box_size == 1 and len(header) >= 16:
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:
            box_size = size - offset
        if box_size < 8:
            return f"corrupt box header at byte {offset}"
        seen.add(box_type)
        if offset + box_size > size:
            return (
                f"'{box_type.decode('latin-1')}' box at byte {offset} needs {box_size} bytes, "
                f"only {size - offset} present"
            )
        offset += box_size
    if b"moov" not in seen:
        return "no 'moov' index box (the file ends before it)"
    return None


def _read_vint(fh, keep_marker: bool) -> tuple[int, int] | None:
    first = fh.read(1)
    if not first:
        return None
    width = 1
    while width <= 8 and not first[0] & (0x80 >> (width - 1)):
        width += 1
    if width > 8:
        return None
    rest = fh.read(width - 1)
    if len(rest) != width - 1:
        return None
    value = first[0] if keep_marker else first[0] & (0xFF >> width)
    for byte in rest:
        value = (value << 8) | byte
    return value, width


def _ebml_truncation(fh, size: int) -> str | None:
    """Matroska/WebM: the Segment element after the EBML header declares its size (when the
    muxer could seek back to write it); a file shorter than that was cut."""
    fh.seek(0)
    for expected in (0x1A45DFA3, 0x18538067):  # EBML header, Segment
        element = _read_vint(fh, keep_marker=True)
        length = _read_vint(fh, keep_marker=False)
        if element is None or length is None:
            return "file ends inside the EBML header"
        if element[0] != expected:
            return None  # unusual layout: leave it to the demuxer
        body_size, width = length
        unknown_size = body_size == (1 << (7 * width)) - 1
        if expected == 0x1A45DFA3:
            fh.seek(body_size, os.SEEK_CUR)
        elif not unknown_size and fh.tell() + body_size > size:
            return f"Segment declares {body_size} bytes, only {size - fh.tell()} present"
    return None


@contextmanager
def open_container(path: Path, mime: str | None) -> Iterator[av.container.InputContainer]:
    """``av.open`` with FFmpeg's failures turned into MediaError reasons."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if mime is not None and mime.startswith("video/"):
            raise MediaError("undecodable", f"{path.name} looks like {mime} but FFmpeg refuses it: {exc}") from None
        raise MediaError("not_media", f"{path.name} is not a container FFmpeg can read: {exc}") from None
    except OSError as exc:
        raise MediaError("unreadable", f"cannot open {path}: {exc}") from None
    try:
        yield container
    except av.error.FFmpegError as exc:
        raise MediaError("undecodable", f"{path.name}: {exc}") from None
    finally:
        container.close()


def video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams:
        raise MediaError("undecodable", f"{path.name}: FFmpeg finds no stream in it (corrupt index?)")
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise MediaError("no_video_stream", f"{path.name} has no video stream (streams: {', '.join(kinds)})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise MediaError("undecodable", f"{path.name}: no decoder for its video codec")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_STREAM_PIXELS:
        raise MediaError("too_large", f"{path.name} is {width}x{height}, over {MAX_STREAM_PIXELS} pixels per frame")
    return stream
