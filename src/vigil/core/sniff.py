"""Decide what a file is from its first bytes, never from its name or a server's Content-Type.

Crawlers meet HTML error pages served as ``video/mp4``, JSON error bodies and thumbnails saved under
a ``.mp4`` name; trusting the extension would send them to the decoder and produce confusing
errors. :func:`sniff_media_type` names the real type so the caller can accept every container the
bundled FFmpeg decodes (:data:`ACCEPTED_VIDEO_TYPES`: MP4, QuickTime, Matroska, WebM, AVI, MPEG-TS,
GIF, APNG) and reject the rest with a clear reason (:func:`describe_rejected`). Animation is read
from the bytes too: a PNG with an ``acTL`` chunk before its first ``IDAT`` is an APNG (accepted), a
WebP whose VP8X header sets the animation flag is an animated WebP (rejected: PyAV's bundled FFmpeg
has no animated-WebP demuxer, its WebP decoder fails on ``ANIM`` frames). Pure: bytes in, a MIME
type out.

>>> sniff_media_type(b"\\x00\\x00\\x00\\x20ftypisom\\x00\\x00\\x02\\x00isomiso2avc1mp41")
'video/mp4'
>>> sniff_media_type(b"\\x00\\x00\\x00\\x14ftypqt  \\x00\\x00\\x02\\x00qt  ")
'video/quicktime'
>>> sniff_media_type(b"GIF89a\\x10\\x00\\x10\\x00")
'image/gif'
>>> sniff_media_type(b"  <!DOCTYPE html><html><body>404</body></html>")
'text/html'
>>> sniff_media_type(b'{"error": "not found"}')
'application/json'
>>> sniff_media_type(b"") is None
True
>>> sniff_media_type(b"\\x89PNG\\r\\n\\x1a\\n") in ACCEPTED_VIDEO_TYPES
False
>>> sorted(ACCEPTED_VIDEO_TYPES) == sorted(MEDIA_SUFFIXES)
True
"""

from __future__ import annotations

#: Store suffix of each accepted (sniffed) media type: the containers PyAV's bundled FFmpeg
#: decodes and Vigil's probe/sample path is tested on (tests/io/test_media_formats.py).
MEDIA_SUFFIXES: dict[str, str] = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "video/webm": ".webm",
    "video/x-msvideo": ".avi",
    "video/mp2t": ".ts",
    "image/gif": ".gif",
    "image/apng": ".png",
}

#: Every other sniffed type is rejected (the crawler quarantines it as ``not_video``).
ACCEPTED_VIDEO_TYPES: frozenset[str] = frozenset(MEDIA_SUFFIXES)

#: What each rejected type is, in words a user reads in a quarantine reason.
REJECTED_TYPES: dict[str, str] = {
    "text/html": "an HTML page (often an error page served in place of the video)",
    "application/json": "a JSON document (often an API error body)",
    "application/xml": "an XML document",
    "image/png": "a PNG still image",
    "image/jpeg": "a JPEG still image",
    "image/webp": "a WebP still image",
    "image/webp+animated": "an animated WebP (the bundled FFmpeg cannot decode animated WebP; convert it to MP4, WebM or GIF)",
    "image/avif": "an AVIF still image",
    "image/heic": "a HEIC still image",
    "audio/mp4": "an audio-only MP4 (M4A)",
    "audio/wav": "a WAV audio file",
}

#: How many leading bytes callers should read; enough for every rule below (a PNG may carry a
#: colour profile of a few kB before the ``acTL`` chunk that makes it an APNG).
SNIFF_BYTES = 8192

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EBML_DOCTYPE_ID = b"\x42\x82"
_UTF8_BOM = b"\xef\xbb\xbf"
_QUICKTIME_LEADING_ATOMS = {b"moov", b"mdat", b"wide", b"pnot", b"skip", b"free"}
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta", b"<script")


def sniff_media_type(head: bytes) -> str | None:
    """Return the MIME type that ``head`` (the file's first bytes) proves, or None if unknown.

    Video: ``video/mp4`` and ``video/quicktime`` (ISO BMFF ``ftyp`` brand, ``qt  `` for QuickTime),
    ``video/webm`` and ``video/x-matroska`` (EBML DocType), ``image/gif``, ``image/apng`` (a PNG
    with an animation control chunk), ``video/x-msvideo`` (RIFF AVI), ``video/mp2t`` (188-byte
    transport packets, or 192-byte M2TS ones). Non-video that crawlers actually receive, so it can
    be rejected by name: ``text/html``, ``application/json``, ``application/xml``, ``image/png``,
    ``image/jpeg``, ``image/webp``, ``image/webp+animated`` (no registered type exists; named apart
    so the rejection can say why), ``image/avif``, ``image/heic``, ``audio/mp4``, ``audio/wav``.

    >>> sniff_media_type(b"\\x1a\\x45\\xdf\\xa3\\x9f\\x42\\x86\\x81\\x01\\x42\\x82\\x84webm")
    'video/webm'
    >>> sniff_media_type(b"\\x1a\\x45\\xdf\\xa3\\xa3\\x42\\x82\\x88matroska")
    'video/x-matroska'
    >>> sniff_media_type(b"RIFF\\x00\\x00\\x00\\x00AVI LIST")
    'video/x-msvideo'
    >>> sniff_media_type(b"\\x00\\x00\\x00\\x18ftypM4V \\x00\\x00\\x00\\x01")
    'video/mp4'
    >>> sniff_media_type(b"\\x00\\x00\\x00\\x1cftypavif\\x00\\x00\\x00\\x00")
    'image/avif'
    >>> sniff_media_type(b"\\xff\\xd8\\xff\\xe0\\x00\\x10JFIF")
    'image/jpeg'
    >>> sniff_media_type(b"hello world") is None
    True
    >>> sniff_media_type(b"RIFF\\x00\\x00\\x00\\x00WEBPVP8X\\x0a\\x00\\x00\\x00\\x02\\x00\\x00\\x00")
    'image/webp+animated'
    >>> sniff_media_type(b"\\x47" + bytes(187) + b"\\x47" + bytes(187) + b"\\x47")
    'video/mp2t'
    """
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _iso_bmff_type(head[8:12])
    if head.startswith(_EBML_MAGIC):
        return _matroska_type(head)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"RIFF") and len(head) >= 12:
        if head[8:12] == b"WEBP":
            return _webp_type(head)
        return {b"AVI ": "video/x-msvideo", b"WAVE": "audio/wav"}.get(head[8:12])
    if head.startswith(_PNG_MAGIC):
        return _png_type(head)
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_LEADING_ATOMS and _plausible_box_size(head):
        return "video/quicktime"  # pre-2001 QuickTime files start with a bare atom, no ftyp
    if _transport_stream(head):
        return "video/mp2t"
    return _text_type(head)


def _transport_stream(head: bytes) -> bool:
    """MPEG-TS: a 0x47 sync byte every 188 bytes (M2TS/Blu-ray: every 192, after a 4-byte
    timecode). Three syncs in a row when the head holds them, so random bytes rarely pass."""
    for start, step in ((0, 188), (4, 192)):
        syncs = range(start, min(len(head), start + 3 * step), step)
        if len(syncs) >= 2 and all(head[at] == 0x47 for at in syncs):
            return True
    return False


def _png_type(head: bytes) -> str:
    """An APNG is a PNG whose ``acTL`` (animation control) chunk comes before the first ``IDAT``;
    a PNG without one is a still (its extra frames, if any, are ignored by every reader)."""
    at = len(_PNG_MAGIC)
    while at + 8 <= len(head):
        length, kind = int.from_bytes(head[at : at + 4], "big"), head[at + 4 : at + 8]
        if kind == b"acTL":
            return "image/apng"
        if kind == b"IDAT":
            break
        at += 12 + length  # length, type, data, CRC
    return "image/png"


def _webp_type(head: bytes) -> str:
    """Extended WebP (``VP8X``) carries an animation flag (bit 1 of its first byte) and ``ANIM``
    / ``ANMF`` chunks; simple WebP (``VP8 ``/``VP8L``) is always a still."""
    if head[12:16] == b"VP8X" and len(head) > 20 and head[20] & 0x02:
        return "image/webp+animated"
    if b"ANIM" in head[12:64]:
        return "image/webp+animated"
    return "image/webp"


def describe_rejected(media_type: str | None) -> str:
    """Why a sniffed type is not accepted, in words for a quarantine reason.

    >>> describe_rejected("image/png")
    'a PNG still image'
    >>> describe_rejected(None)
    'unrecognised bytes'
    >>> describe_rejected("application/zip")
    'application/zip, not a container Vigil decodes'
    """
    if media_type is None:
        return "unrecognised bytes"
    return REJECTED_TYPES.get(media_type, f"{media_type}, not a container Vigil decodes")


def _iso_bmff_type(major_brand: bytes) -> str:
    """ISO BMFF is shared by mp4, QuickTime, HEIF/AVIF stills and m4a audio: the brand decides."""
    brand = major_brand.lower()
    if brand == b"qt  ":
        return "video/quicktime"
    if brand in (b"avif", b"avis"):
        return "image/avif"
    if brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
        return "image/heic"
    if brand in (b"m4a ", b"m4b ", b"m4p "):
        return "audio/mp4"
    return "video/mp4"  # isom, iso2..iso6, mp41, mp42, avc1, M4V, dash, 3gp*, f4v ...


def _plausible_box_size(head: bytes) -> bool:
    size = int.from_bytes(head[:4], "big")
    return size in (0, 1) or size >= 8


def _matroska_type(head: bytes) -> str:
    """WebM is Matroska with DocType ``webm``; the DocType sits in the EBML header's first bytes."""
    at = head.find(_EBML_DOCTYPE_ID, 4, 64)
    if at < 0:
        return "video/x-matroska"
    size_at = at + len(_EBML_DOCTYPE_ID)
    if size_at >= len(head):
        return "video/x-matroska"
    first = head[size_at]
    width = 1
    while width <= 8 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 8:
        return "video/x-matroska"
    size = first & (0xFF >> width)
    for byte in head[size_at + 1 : size_at + width]:
        size = (size << 8) | byte
    doctype = head[size_at + width : size_at + width + size].rstrip(b"\x00")
    return "video/webm" if doctype == b"webm" else "video/x-matroska"


def _text_type(head: bytes) -> str | None:
    """HTML/JSON/XML bodies: what a server sends instead of the video when something went wrong."""
    text = head.removeprefix(_UTF8_BOM).lstrip(b" \t\r\n\x0c").lower()
    if not text:
        return None
    if text.startswith(_HTML_STARTS) or (text.startswith(b"<!--") and b"<html" in text):
        return "text/html"
    if text.startswith(b"<?xml"):
        return "text/html" if b"<html" in text else "application/xml"
    if text[:1] in (b"{", b"[") and _looks_like_json(text):
        return "application/json"
    return None


def _looks_like_json(text: bytes) -> bool:
    """A leading brace is not enough (binary data can start with one): the rest must be text."""
    sample = text[:256]
    return all(byte >= 0x20 or byte in b"\t\r\n" for byte in sample)
