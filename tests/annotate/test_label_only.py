"""Label-only annotations: a crawled fake's verdict kept, without evidence, in the output grammar."""

from __future__ import annotations

import hashlib

import pytest

from vigil.annotate.label_only import (
    LABEL_ONLY_ANNOTATOR,
    LABEL_ONLY_VERSION,
    label_only_annotation,
    label_only_explanation,
)
from vigil.core.annotation import annotation_row, is_current
from vigil.core.grammar import check, condense

PV, TV = "grammar-v1", 1


def sid(n) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_a_label_only_record_keeps_the_verdict_and_claims_no_evidence():
    # when a fake without ground truth gets its label-only record
    ann = label_only_annotation(sid(1), "fake", prompt_version=PV, taxonomy_version=TV)
    # then it is accepted, of kind label_only, with the clip's label and no artifacts
    assert ann.status == "accepted" and ann.label == "fake" and ann.artifacts == () and ann.label_only
    assert ann.provenance.kind == "label_only" and ann.provenance.annotator == LABEL_ONLY_ANNOTATOR
    # and its explanation is the grammar with no evidence at all, saying nothing was localised
    parsed = check(ann.explanation)
    assert parsed.ok and parsed.label == "fake" and parsed.evidence == ()
    assert "No artifact was localised" in ann.explanation
    assert condense(ann.explanation) == "<think></think>\n<answer>Fake</answer>"
    # and its table row says so: kind label_only, no evidence, compliant, agreeing with the label
    row = annotation_row(ann.sample_id, "fake", ann)
    assert (row["kind"], row["n_evidence"], row["compliant"], row["label_agrees"]) == ("label_only", 0, True, True)


def test_label_only_records_are_versioned_like_the_others():
    ann = label_only_annotation(sid(2), "fake", prompt_version=PV, taxonomy_version=TV)
    today = dict(prompt_version=PV, taxonomy_version=TV, annotator=LABEL_ONLY_ANNOTATOR,
                 annotator_version=LABEL_ONLY_VERSION)
    assert is_current(ann.provenance, **today)
    assert not is_current(ann.provenance, **(today | {"prompt_version": "grammar-v2"}))
    assert not is_current(ann.provenance, **(today | {"annotator": "teacher-7b"}))


def test_a_real_verdict_can_be_label_only_too_and_other_labels_are_refused():
    assert check(label_only_explanation("real")).label == "real"
    with pytest.raises(ValueError, match="label"):
        label_only_explanation("unknown")
