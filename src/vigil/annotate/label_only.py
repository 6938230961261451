"""Label-only annotations: a clip's verdict, kept while nobody has grounded its artifacts yet.

A fake crawled from a real generator has a label (its source says it is AI-generated) but no
ground-truth artifacts, so the synthetic annotator cannot ground it, and rejecting it would throw
its verdict away. Without a teacher it gets this record instead: ``kind="label_only"``,
``artifacts=()``, the clip's label, and an explanation in the output grammar that says no artifact
was localised. Training uses it where a verdict alone is enough (GRPO's answer reward; SFT per
``train.sft.label_only``), and the Label Studio export puts it first in front of a person, whose
annotation then overrides it.

The annotator is :data:`LABEL_ONLY_ANNOTATOR` under the usual prompt and taxonomy versions, so a
prompt or taxonomy bump makes these records stale like any other (``vigil.core.annotation.is_current``).
"""

from __future__ import annotations

from vigil.core.annotation import LABEL_ONLY_KIND, Annotation, Provenance
from vigil.core.grammar import check

LABEL_ONLY_ANNOTATOR = "source-claim"
# Bump when the explanation text changes: older label-only records are then stale.
LABEL_ONLY_VERSION = "1"

_EXPLANATIONS = {
    "fake": ("<think>No artifact was localised in this clip: its label comes from its source, and no time span "
             "or region has been grounded yet.</think>\n<answer>Fake</answer>"),
    "real": ("<think>No segment was localised in this clip: its label comes from its source, and no time span "
             "or region has been grounded yet.</think>\n<answer>Real</answer>"),
}


def label_only_explanation(label: str) -> str:
    """The grammar-valid explanation of a verdict without evidence (no ``<type>``/``<t>``/``<bbox>``).

    >>> from vigil.core.grammar import check
    >>> out = check(label_only_explanation("fake"))
    >>> out.ok, out.label, out.evidence
    (True, 'fake', ())
    """
    if label not in _EXPLANATIONS:
        raise ValueError(f"label must be 'real' or 'fake', got {label!r}")
    return _EXPLANATIONS[label]


def label_only_annotation(sample_id: str, label: str, *, prompt_version: str, taxonomy_version: int) -> Annotation:
    """The accepted label-only record of one clip: its verdict, no artifacts, :func:`label_only_explanation`."""
    text = label_only_explanation(label)
    parsed = check(text)
    assert parsed.ok, parsed.violations  # a fixed text: a failure here is a bug in this module
    return Annotation(
        sample_id=sample_id, label=label, artifacts=(), explanation=text,  # type: ignore[arg-type]
        provenance=Provenance(kind=LABEL_ONLY_KIND, annotator=LABEL_ONLY_ANNOTATOR, prompt_version=prompt_version,
                              taxonomy_version=taxonomy_version, annotator_version=LABEL_ONLY_VERSION))
