"""The annotation record: one grounded explanation of one clip, and where it came from.

Every source (synthetic from ground truth, a teacher model, a human in Label Studio) produces this
record. Records are append-only: re-annotation adds a record, it never replaces one. A record is
*current* when its provenance matches today's versions (taxonomy, prompt, annotator); the newest
current accepted record of a sample is the one a labelled dataset version carries.

A ``label_only`` record is the exception to "grounded": a clip whose label is known (a crawled fake
from a real generator: its source says so) but whose artifacts nobody has localised yet. It keeps
the verdict, carries no artifacts, says so in its explanation, and waits for a person to ground it
(a human record then overrides it). Training uses it only where a verdict alone is enough.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.core.hashing import sha256_json

AnnotationKind = Literal["synthetic", "teacher", "human", "label_only"]
#: The kind of a record that keeps a clip's verdict without grounded evidence (see the module note).
LABEL_ONLY_KIND = "label_only"
AnnotationStatus = Literal["accepted", "rejected"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnnotatedArtifact(_Record):
    """One piece of grounded evidence: an artifact type, where in time, where in the frame."""

    type: str | None = Field(description="L3 taxonomy name; None for 'normal segment' evidence of a real clip.")
    t: tuple[float, float] = Field(description="[start_s, end_s] within the clip.")
    bbox: tuple[float, float, float, float] | None = Field(None, description="[x1, y1, x2, y2] normalised to 0–1.")
    mask_uri: str | None = Field(None, description="Store URI of a per-frame mask, when one exists.")


class Provenance(_Record):
    """Who or what wrote the annotation, under which versions: what decides staleness."""

    kind: AnnotationKind
    annotator: str = Field(description="Annotator id: a person's id, a teacher model name, 'zoo-ground-truth', "
                                       "or 'source-claim' (a label-only record: the verdict its source states).")
    prompt_version: str = Field(description="Version of the prompt/grammar the annotation follows.")
    taxonomy_version: int = Field(description="Version of the artifact taxonomy.")
    annotator_version: str = Field("1", description="Version of the annotator itself (phrasing bank, model revision).")


class Usage(_Record):
    """What a teacher call cost (zero for other sources)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    cost_usd: float = 0.0
    latency_s: float = 0.0


class Annotation(_Record):
    sample_id: str = Field(description="sha256 of the clip's media bytes.")
    label: Literal["real", "fake"]
    artifacts: tuple[AnnotatedArtifact, ...] = ()
    explanation: str = Field(description="The full answer in the output grammar (<think>…</think><answer>…</answer>).")
    provenance: Provenance
    status: AnnotationStatus = "accepted"
    rejection_reason: str | None = Field(None, description="Why a rejected annotation was rejected (violations, label contradiction).")
    violations: tuple[str, ...] = Field((), description="Grammar violation codes found when checking the explanation.")
    usage: Usage = Usage()
    flagged_by: str | None = Field(None, description="Who flagged this sample for re-annotation, if anyone.")
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @field_validator("sample_id")
    @classmethod
    def _hex64(cls, v: str) -> str:
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError(f"sample_id must be 64 lower-case hex characters, got {v!r}")
        return v

    @property
    def label_only(self) -> bool:
        """A verdict without grounded evidence: what a human is asked to ground first."""
        return self.provenance.kind == LABEL_ONLY_KIND

    @property
    def annotation_id(self) -> str:
        """Content hash: the same annotation written twice is the same record."""
        return sha256_json(self.model_dump(mode="json"))[:32]


def annotation_key(sample_id: str, annotation_id: str) -> str:
    """Store key of one annotation record (append-only, one object per record)."""
    return f"annotations/{sample_id[:2]}/{sample_id}/{annotation_id}.json"


def is_current(provenance: Provenance, *, annotator: str, prompt_version: str, taxonomy_version: int,
               annotator_version: str) -> bool:
    """True when an annotation was made under today's prompt and taxonomy by today's annotator.

    Annotations are versioned by taxonomy version, prompt version and annotator: one from another
    annotator (or another version of it) is stale once the pipeline has switched. A person's
    annotation stays current across annotator switches: it overrides machine annotations.

    >>> p = Provenance(kind="synthetic", annotator="zoo", prompt_version="v1", taxonomy_version=1)
    >>> is_current(p, annotator="zoo", prompt_version="v1", taxonomy_version=1, annotator_version="1")
    True
    >>> is_current(p, annotator="teacher-7b", prompt_version="v1", taxonomy_version=1, annotator_version="1")
    False
    """
    if (provenance.prompt_version, provenance.taxonomy_version) != (prompt_version, taxonomy_version):
        return False
    if provenance.kind == "human":
        return True
    return (provenance.annotator, provenance.annotator_version) == (annotator, annotator_version)


ANNOTATION_TABLE_COLUMNS = (
    "sample_id", "label", "annotation_id", "annotation_label", "kind", "annotator", "prompt_version",
    "taxonomy_version", "annotator_version", "explanation", "artifacts_json", "n_evidence", "artifact_types",
    "compliant", "violations", "label_agrees", "created_at", "prompt_tokens", "completion_tokens", "cost_usd",
)


def annotation_row(sample_id: str, label: str, annotation: Annotation | None) -> dict:
    """One row of a labelled version's annotation table; a sample without an annotation keeps
    its row with empty annotation fields, so that coverage is visible to validation."""
    import json

    if annotation is None:
        return {c: None for c in ANNOTATION_TABLE_COLUMNS} | {
            "sample_id": sample_id, "label": label, "artifact_types": [], "violations": []}
    typed = [a for a in annotation.artifacts if a.type is not None]
    return {
        "sample_id": sample_id, "label": label, "annotation_id": annotation.annotation_id,
        "annotation_label": annotation.label, "kind": annotation.provenance.kind,
        "annotator": annotation.provenance.annotator, "prompt_version": annotation.provenance.prompt_version,
        "taxonomy_version": annotation.provenance.taxonomy_version,
        "annotator_version": annotation.provenance.annotator_version, "explanation": annotation.explanation,
        "artifacts_json": json.dumps([a.model_dump(mode="json") for a in annotation.artifacts]),
        "n_evidence": len(typed), "artifact_types": sorted({a.type for a in typed}),
        "compliant": not annotation.violations, "violations": list(annotation.violations),
        "label_agrees": annotation.label == label, "created_at": annotation.created_at,
        "prompt_tokens": annotation.usage.prompt_tokens, "completion_tokens": annotation.usage.completion_tokens,
        "cost_usd": annotation.usage.cost_usd,
    }
