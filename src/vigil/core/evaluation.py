"""Evaluation records (one schema each): a clip of an evaluation set, a model's prediction on it.

An evaluation set is a folder in Skyra's layout (``frames/<clip>/1.png … N.png + timestamps.txt``
and a ``test_index.json`` that Skyra's inference script reads) plus ``clips.jsonl``: one
:class:`EvalClip` per line with the ground truth the metrics need.

Predictions are written as a JSON list of :class:`Prediction` in the layout Skyra's public evaluator
reads (``video_id``, ``aigc_model_name``, ``mllm_model_name``, ``gt``, ``response``, ``answer``) plus
Vigil's own fields (parsed evidence, fake probability, latency), so another team's tooling scores our
predictions unchanged.

Pairs follow Skyra's protocol: a real clip ``Real/<base_id>`` and a fake ``<generator>/<base_id>``
share the base id; a real clip may pair with fakes of several generators.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.core.grammar import is_whole_frame
from vigil.core.records import ArtifactTruth

REAL = "Real"  # Skyra's aigc_model_name (and video_id prefix) for real clips
Answer = Literal["Real", "Fake", "Error"]  # "Error": no parsable <answer> (Skyra's evaluator writes the same)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TruthArtifact = ArtifactTruth  # a ground-truth artifact: the crawl record's schema, one place


class EvidenceItem(_Record):
    """One piece of parsed evidence from a model's answer (any part may be missing)."""

    type: str | None = None
    t: tuple[float, float] | None = None
    bbox: tuple[float, float, float, float] | None = None

    @property
    def whole_frame(self) -> bool:
        """The box is the whole frame (the grammar reads Skyra's zero box as ``[0, 0, 1, 1]``).

        >>> EvidenceItem(bbox=(0.0, 0.0, 1.0, 1.0)).whole_frame, EvidenceItem().whole_frame
        (True, False)
        """
        return is_whole_frame(self.bbox)


class EvalClip(_Record):
    """One clip of an evaluation set and everything known about it."""

    video_id: str = Field(description="'<generator>/<base_id>' for a fake, 'Real/<base_id>' for a real clip.")
    aigc_model_name: str = Field(description="The generator, or 'Real'.")
    gt: Literal["Real", "Fake"] = Field(description="Ground-truth answer.")
    base_id: str = Field(description="Pair key: a real clip and the fakes made from it share it.")
    frames_dir: str = Field(description="Frame folder (Skyra layout), relative to the evaluation set folder.")
    duration_s: float = Field(ge=0, description="Clip duration, seconds.")
    truth: tuple[TruthArtifact, ...] = Field((), description="Ground-truth artifacts, when known.")
    has_truth: bool = Field(False, description="Whether the artifacts are known (a real clip with truth has none).")
    masks: str | None = Field(None, description="Per-frame union artifact masks (.npy, bool T×H×W), relative path.")
    reference: str | None = Field(None, description="Reference explanation in the output grammar (ROUGE-L).")
    sample_id: str | None = Field(None, description="sha256 of the media bytes, when the clip is a dataset sample.")


class Prediction(_Record):
    """One model answer, in Skyra's prediction layout plus Vigil's fields."""

    video_id: str
    aigc_model_name: str
    mllm_model_name: str = Field(description="The model version that answered.")
    gt: Literal["Real", "Fake"]
    response: str = Field(description="The model's raw output.")
    answer: Answer = Field(description="Parsed verdict; 'Error' when unparsable (counts as wrong).")
    format_ok: bool = Field(description="The whole output follows the grammar (no violations).")
    evidence: tuple[EvidenceItem, ...] = Field((), description="Parsed evidence, in order.")
    fake_probability: float | None = Field(
        None, ge=0, le=1, description="P(Fake) from the answer token's log-probabilities; None when not available.")
    latency_s: float = Field(0.0, ge=0, description="Seconds to answer this clip (batch time / batch size offline).")
    base_id: str = Field(description="Pair key (see EvalClip).")


def generator_of(video_id: str) -> str:
    """The generator part of a Skyra video id (``Real`` for real clips).

    >>> generator_of("nova-6/p12"), generator_of("Real/p12")
    ('nova-6', 'Real')
    """
    return video_id.split("/", 1)[0]


def read_clips(folder: str | Path) -> list[EvalClip]:
    path = Path(folder) / "clips.jsonl"
    return [EvalClip.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


def write_predictions(predictions: Iterable[Prediction], path: str | Path) -> Path:
    """A JSON list (Skyra's evaluator reads it as is), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps([p.model_dump(mode="json") for p in predictions], indent=1, ensure_ascii=False))
    tmp.replace(path)
    return path


def read_predictions(path: str | Path) -> list[Prediction]:
    """Predictions from a JSON list; a malformed entry is named by its index."""
    rows = json.loads(Path(path).read_text())
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of predictions")
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(Prediction.model_validate(row))
        except ValueError as exc:
            raise ValueError(f"{path}: prediction #{i} is malformed: {exc}") from None
    return out


def join_truth(predictions: Sequence[Prediction], clips: Sequence[EvalClip]) -> list[tuple[Prediction, EvalClip]]:
    """Each prediction with its clip (by video_id); a prediction for an unknown clip is an error."""
    by_id = {c.video_id: c for c in clips}
    missing = [p.video_id for p in predictions if p.video_id not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} predictions name clips not in the evaluation set, e.g. {missing[:3]}")
    return [(p, by_id[p.video_id]) for p in predictions]
