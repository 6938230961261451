"""The annotation suite counts grounded and label-only fakes apart (vigil.io.validation.validate_annotations):
evidence per fake is judged on grounded fakes only, both counts are reported, and a failure's advice
names the annotate.* setting behind it."""

from __future__ import annotations

import hashlib

import pandas as pd

from vigil.config.params import AnnotateParams
from vigil.core.annotation import AnnotatedArtifact, Annotation, Provenance, annotation_row
from vigil.io.validation import validate_annotations

PARAMS = AnnotateParams(min_coverage=0.9, min_evidence_per_fake=1.0)
EVIDENCE = "expect_column_mean_to_be_between(_fake_evidence)"


def _sid(i: int) -> str:
    return hashlib.sha256(f"ann-{i}".encode()).hexdigest()


def _row(i: int, label: str, kind: str | None, n_evidence: int = 0) -> dict:
    if kind is None:
        return annotation_row(_sid(i), label, None)
    artifacts = tuple(AnnotatedArtifact(type="temporal_flicker", t=(0.0, 1.0)) for _ in range(n_evidence))
    annotation = Annotation(sample_id=_sid(i), label=label, artifacts=artifacts, explanation="<answer>x</answer>",
                            provenance=Provenance(kind=kind, annotator="a", prompt_version="v1", taxonomy_version=1))
    return annotation_row(_sid(i), label, annotation)


def _table(spec: list[tuple[str, str | None, int]]) -> pd.DataFrame:
    return pd.DataFrame([_row(i, label, kind, n) for i, (label, kind, n) in enumerate(spec)])


def test_label_only_fakes_are_counted_apart_and_do_not_dilute_evidence():
    # given 3 reals, 3 grounded fakes with 2 pieces of evidence each and 4 label-only fakes (no evidence)
    table = _table([("real", "synthetic", 0)] * 3 + [("fake", "synthetic", 2)] * 3 + [("fake", "label_only", 0)] * 4)

    # when validated
    result = validate_annotations(table, PARAMS, None)

    # then it passes: evidence per fake is the grounded fakes' 2.0, not 6/7, and both counts are reported
    assert result.success, result.summary()
    evidence = next(e for e in result.expectations if e.name == EVIDENCE)
    assert evidence.observed == 2.0
    assert result.statistics["grounded_fakes"] == 3 and result.statistics["label_only_fakes"] == 4
    assert result.statistics["evidence_check"] == "judged on 3 grounded fakes"
    assert "3 grounded, 4 label-only" in result.summary()


def test_when_every_fake_is_label_only_the_evidence_check_passes_with_nothing_to_judge():
    # given reals and label-only fakes only (a crawled gallery without artifacts)
    table = _table([("real", "synthetic", 0)] * 2 + [("fake", "label_only", 0)] * 3)

    # when validated; then it passes and says the evidence check had nothing to judge
    result = validate_annotations(table, PARAMS, None)
    assert result.success, result.summary()
    assert EVIDENCE not in {e.name for e in result.expectations}
    assert result.statistics["grounded_fakes"] == 0 and result.statistics["label_only_fakes"] == 3
    assert "nothing to judge" in result.statistics["evidence_check"] and "label-only" in result.summary()


def test_failures_name_the_annotate_setting_to_change():
    # given grounded fakes without evidence, a label-only fake, and 2 of 10 samples unannotated
    table = _table([("real", "synthetic", 0)] * 4 + [("fake", "teacher", 0)] * 3 + [("fake", "label_only", 0)]
                   + [("fake", None, 0)] * 2)

    # when validated
    result = validate_annotations(table, PARAMS, None)

    # then evidence (judged on the 3 grounded fakes) and coverage fail, each naming its annotate.* setting
    advice = {e.name: e.advice for e in result.failures}
    assert set(advice) == {EVIDENCE, "expect_column_values_to_not_be_null(annotation_id)"}, result.summary()
    assert "annotate.min_evidence_per_fake = 1.0" in advice[EVIDENCE] and "3 grounded fakes" in advice[EVIDENCE]
    assert "1 label-only" in advice[EVIDENCE]
    coverage = advice["expect_column_values_to_not_be_null(annotation_id)"]
    assert "0.800 of the samples" in coverage and "annotate.min_coverage" in coverage
    assert "annotate.min_coverage" in result.summary()
