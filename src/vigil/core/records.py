"""The crawl record: what the crawler knows about one stored clip, and where it came from.

One JSON per sighting lives at ``provenance/<sha[:2]>/<sha>/<sighting>.json`` in the store
(a clip seen at two URLs has two sightings; nothing is overwritten). Ingest reads these records to
build manifest rows (vigil.core.sample), so this module is the one schema between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.core.grammar import WHOLE_FRAME

Label = Literal["real", "fake", "unknown"]

#: Who made a claim of a crawled clip: ``published`` — the site itself (its metadata document, feed
#: item or page); ``source`` — the crawl source's own setting (``crawl.sources[i].label`` /
#: ``generator`` / ``licence``); ``path`` — ``crawl.sources[i].generator_from_path`` matched the media
#: URL's path; ``label`` — implied by a ``real`` label (camera footage's generator is ``real``).
ClaimOrigin = Literal["published", "source", "path", "label"]
#: The claims whose origin a record names (only those that are known: not ``unknown`` / None).
CLAIMED_FIELDS = ("label", "generator", "licence")

# ---- claim caps -------------------------------------------------------------------------------
# A source's claims are free text we store and later show and train on. A page can claim anything,
# so each field is cut to a size no honest source needs: long enough for any real prompt (generators
# cap theirs at a few thousand characters) and any name, licence or date, short enough that one page
# cannot bloat every record, manifest and annotation request downstream. The cut keeps the start,
# ends with TRUNCATION_MARKER, and the record says which field was cut and how long it was.

#: Characters kept of a prompt claim (the one long free-text field).
MAX_PROMPT_CHARS = 4000
#: Characters kept of every short claim: generator, licence, pair id, item id, publication date, artifact type.
MAX_SHORT_CLAIM_CHARS = 200
#: Ground-truth artifacts kept per clip (the zoo publishes at most a handful).
MAX_ARTIFACTS = 64
#: Ends a cut value, so that a reader sees it was cut (counted within the cap).
TRUNCATION_MARKER = "…[truncated]"
#: The cap of each claim field (``artifacts`` counts items, the others characters).
CLAIM_CAPS: dict[str, int] = {
    "prompt": MAX_PROMPT_CHARS, "generator": MAX_SHORT_CLAIM_CHARS, "licence": MAX_SHORT_CLAIM_CHARS,
    "pair_id": MAX_SHORT_CLAIM_CHARS, "item_id": MAX_SHORT_CLAIM_CHARS, "published_at": MAX_SHORT_CLAIM_CHARS,
    "artifact_type": MAX_SHORT_CLAIM_CHARS, "artifacts": MAX_ARTIFACTS,
}


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactTruth(_Record):
    """A ground-truth artifact published by a source that knows it (the zoo does)."""

    type: str = Field(description="L3 name from the taxonomy.")
    t: tuple[float, float] = Field(description="[start_s, end_s] within the clip.")
    bbox: tuple[float, float, float, float] = Field(description="[x1, y1, x2, y2] normalised to 0–1.")
    mask_index: int | None = Field(None, description="Index of this artifact's per-frame mask in the mask file.")

    @field_validator("bbox")
    @classmethod
    def _box_in_unit_square(cls, v):
        if all(c == 0 for c in v):  # Skyra's [0, 0, 0, 0]: the artifact covers the frame (camera motion, lighting)
            return WHOLE_FRAME
        x1, y1, x2, y2 = v
        if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
            raise ValueError(f"bbox {v} must satisfy 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
        return v


class TruncatedClaim(_Record):
    """A claim field the crawler cut to its cap (:data:`CLAIM_CAPS`): which, how long it was, what was kept."""

    field: str = Field(description="Claim field name (``artifacts[3].type`` for an artifact's).")
    original_length: int = Field(ge=0, description="Characters (items for ``artifacts``) the source sent.")
    kept: int = Field(ge=0, description="Characters (items) stored, the marker included.")


def cap_text(value: str | None, limit: int) -> tuple[str | None, int | None]:
    """``value`` cut to ``limit`` characters ending with the marker, and its original length when cut.

    >>> cap_text("abc", 5), cap_text(None, 5)
    (('abc', None), (None, None))
    >>> text, n = cap_text("x" * 50, 20); len(text), n, text.endswith(TRUNCATION_MARKER)
    (20, 50, True)
    """
    if value is None or len(value) <= limit:
        return value, None
    return value[: max(limit - len(TRUNCATION_MARKER), 0)] + TRUNCATION_MARKER[:limit], len(value)


_T = TypeVar("_T")


def cap_items(items: Sequence[_T], limit: int = MAX_ARTIFACTS) -> tuple[tuple[_T, ...], int | None]:
    """The first ``limit`` items, and the original count when some were dropped."""
    return (tuple(items), None) if len(items) <= limit else (tuple(items[:limit]), len(items))


class CrawledItem(_Record):
    """One sighting of one clip: content identity, source, claimed labels and ground truth."""

    sha256: str = Field(description="sha256 of the media bytes: the sample id.")
    media_key: str | None = Field(description="Store key of the bytes; None for a near-duplicate (not stored again).")
    media_type: str = Field(description="Content type sniffed from the bytes.")
    size: int = Field(ge=0, description="Bytes.")
    source: str = Field(description="Configured source name.")
    domain: str = Field(description="Host the media came from.")
    page_url: str | None = Field(None, description="Item page that linked the media.")
    media_url: str = Field(description="URL asked for.")
    final_url: str = Field(description="URL after redirects.")
    fetched_at: str = Field(description="ISO-8601 UTC time of the download.")
    phash: str = Field(description="Perceptual hash of the clip (vigil.core.phash).")
    generator: str = Field("unknown", description="Claimed generator: 'real', a generator name, or 'unknown'.")
    label: Label = Field("unknown", description="Claimed label.")
    pair_id: str | None = Field(None, description="Shared by a fake and the real clip it was generated from.")
    prompt: str | None = None
    licence: str | None = None
    published_at: str | None = Field(None, description="When the source published it.")
    artifacts: tuple[ArtifactTruth, ...] = ()
    mask_key: str | None = Field(None, description="Store key of the per-frame artifact masks (npz), if published.")
    near_duplicate_of: str | None = Field(None, description="sha256 of the stored clip this one nearly duplicates.")
    duplicate: bool = Field(False, description="Exact duplicate: the bytes were already stored.")
    crawler: str = Field("vigil", description="Crawler name and version.")
    truncated: tuple[TruncatedClaim, ...] = Field(
        (), description="Claims cut to their cap (CLAIM_CAPS) before they were recorded; empty when none was.")
    claimed_by: dict[str, ClaimOrigin] = Field(
        default_factory=dict,
        description="Who claimed each known label/generator/licence (ClaimOrigin): the site ('published') or "
                    "the crawl source's settings ('source', 'path', 'label'). Empty in records written before "
                    "sources could claim, where every claim was the site's.")


def provenance_key(sha256: str, sighting_id: str) -> str:
    return f"provenance/{sha256[:2]}/{sha256}/{sighting_id}.json"


def labels_conflict(a: str, b: str) -> bool:
    """True when both claimed labels are known and differ: such clips are never near-duplicates.

    A fake made from a real clip's prompt or first frame is perceptually close to it by design;
    the difference is the artifact the detector must learn, so both are kept.

    >>> labels_conflict("real", "fake"), labels_conflict("fake", "fake"), labels_conflict("unknown", "real")
    (True, False, False)
    """
    return a != "unknown" and b != "unknown" and a != b
