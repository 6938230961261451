"""The error every bad clip becomes: :class:`MediaError`, with a machine-readable ``reason``.

Crawled input is hostile by accident: empty downloads, cut-off files, HTML error pages named
``.mp4``, audio-only files, 4K phone clips with a rotation flag. Every module of :mod:`vigil.io.media`
turns each of those into a :class:`MediaError` whose ``reason`` the ingest flow can count and
quarantine by, never a raw PyAV/FFmpeg exception; it is an :class:`~vigil.config.errors.InputError`
(the input itself is bad), so the command line and the flows' retry policy treat it as one.
"""

from __future__ import annotations

from vigil.config.errors import InputError


class MediaError(InputError):
    """A clip that cannot be used, with a machine-readable ``reason`` and a human ``detail``.

    Reasons: ``not_found``, ``unreadable``, ``empty_file``, ``not_media``, ``truncated``,
    ``no_video_stream``, ``undecodable``, ``too_long``, ``too_large``.
    """

    REASONS = frozenset(
        {
            "not_found",
            "unreadable",
            "empty_file",
            "not_media",
            "truncated",
            "no_video_stream",
            "undecodable",
            "too_long",
            "too_large",
        }
    )

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown MediaError reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
