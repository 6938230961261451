"""Skyra's paired protocol per generator: :func:`skyra_scores`, and the per-generator grouping.

A pair is the real clip ``Real/<b>`` and a generator's fake ``G/<b>`` (matched by ``base_id``); each
generator is scored on its own fakes and the reals paired with them (paired balanced accuracy, fake
recall, F1), and the overall scores are unweighted means across generators. The grouping
(:func:`generator_groups`, :func:`generator_slice`) is shared with the per-generator slices of
:mod:`vigil.core.metrics.slices`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from vigil.core.evaluation import Prediction, generator_of
from vigil.core.metrics.classification import answers_and_labels, f1_score, is_correct, recall
from vigil.core.metrics.common import mean, nanmean

__all__ = ["skyra_scores"]


def generator_groups(predictions: Sequence[Prediction]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Indices of each generator's fakes (sorted by generator) and of the real clip of each base id."""
    seen: set[str] = set()
    fakes: dict[str, list[int]] = defaultdict(list)
    reals: dict[str, int] = {}
    for i, p in enumerate(predictions):
        if p.video_id in seen:
            raise ValueError(f"two predictions for clip {p.video_id!r}")
        seen.add(p.video_id)
        if p.gt == "Real":
            if p.base_id in reals:
                raise ValueError(f"two real clips share base id {p.base_id!r}")
            reals[p.base_id] = i
        else:
            fakes[generator_of(p.video_id)].append(i)
    return dict(sorted(fakes.items())), reals


def generator_slice(predictions: Sequence[Prediction], fakes: Sequence[int],
                     reals: dict[str, int]) -> tuple[list[int], list[tuple[int, int]]]:
    """(the generator's fakes followed by the reals paired with them, the (real, fake) pairs)."""
    pairs = [(reals[predictions[f].base_id], f) for f in fakes if predictions[f].base_id in reals]
    return [*fakes, *dict.fromkeys(r for r, _ in pairs)], pairs


def skyra_scores(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Skyra's protocol: paired balanced accuracy, fake recall and F1 per generator, then unweighted
    means across generators.

    A pair is the real clip ``Real/<b>`` and a generator's fake ``G/<b>`` (matched by ``base_id``);
    a real clip may pair with fakes of several generators and counts in each. Fakes without a real
    partner count in recall and F1 but not in paired balanced accuracy (``unpaired_fakes``); reals
    without any fake are left out everywhere (``unpaired_reals``). An 'Error' answer is wrong: a
    missed fake (FN) or a false alarm on a real clip (FP).

    Per generator: ``pairs``, ``fakes``, ``unpaired_fakes``, ``paired_balanced_accuracy`` (mean over
    complete pairs of ([real correct] + [fake correct]) / 2; nan without a pair), ``fake_recall``
    (all the generator's fakes), ``f1`` (Fake positive; its fakes plus their paired reals, each real
    once) and ``unparsable`` (Errors among those clips). Overall: the three scores averaged over
    generators (nan skipped), ``generators``, ``unparsable`` (over all predictions),
    ``unpaired_reals`` and ``per_generator``.
    """
    fakes_by_generator, reals = generator_groups(predictions)
    answers, labels = answers_and_labels(predictions)
    per_generator: dict[str, dict[str, Any]] = {}
    paired_bases: set[str] = set()
    for generator, fakes in fakes_by_generator.items():
        clips, pairs = generator_slice(predictions, fakes, reals)
        paired_bases.update(predictions[f].base_id for _, f in pairs)
        per_generator[generator] = {
            "pairs": len(pairs),
            "fakes": len(fakes),
            "unpaired_fakes": len(fakes) - len(pairs),
            "paired_balanced_accuracy": mean([(is_correct(answers[r], 0) + is_correct(answers[f], 1)) / 2
                                               for r, f in pairs]),
            "fake_recall": recall([answers[f] for f in fakes], [1] * len(fakes)),
            "f1": f1_score([answers[i] for i in clips], [labels[i] for i in clips]),
            "unparsable": sum(predictions[i].answer == "Error" for i in clips),
        }
    scores = list(per_generator.values())
    return {
        "paired_balanced_accuracy": nanmean([g["paired_balanced_accuracy"] for g in scores]),
        "fake_recall": nanmean([g["fake_recall"] for g in scores]),
        "f1": nanmean([g["f1"] for g in scores]),
        "generators": len(per_generator),
        "unparsable": sum(p.answer == "Error" for p in predictions),
        "unpaired_reals": sum(base not in paired_bases for base in reals),
        "per_generator": per_generator,
    }
