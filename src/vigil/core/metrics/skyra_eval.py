"""The ``skyra_eval`` scoring mode: Skyra's public ``eval/eval.py``, reproduced number for number.

Vigil's own reading of Skyra's protocol (:mod:`vigil.core.metrics.skyra`) is strict: an unparsable
answer is wrong whatever the truth, and recall and F1 cover every fake of a generator. Skyra's
evaluator reads the same prediction file differently, and papers quote its numbers, so this module
re-implements it (from its published behaviour; no code of it is copied) to put those numbers beside
Vigil's. Its rules, as eval.py applies them:

* a row counts only with ``gt``, ``answer``, ``video_id`` and ``aigc_model_name`` all present and a
  ``video_id`` of the form ``<anything>/<base id>``; ``gt`` is otherwise unused: a clip is real when
  its ``aigc_model_name`` is ``real`` in any case, and a fake's generator is its ``aigc_model_name``;
* an answer is Real only when it is ``real`` in any case; anything else (``Fake``, Vigil's
  ``Error``, the raw text Skyra's inference script keeps when an ``<answer>`` names neither) reads
  as **Fake**;
* a generator is scored only on complete pairs (the real clip and the generator's fake of one base
  id); fakes without a real partner and reals without a fake are left out of every score; a later
  row for the same clip replaces an earlier one;
* per generator, with the pairs' clips (each real once, each fake once): sklearn's balanced accuracy
  (mean of the real and the fake recall), fake recall and F1 of Fake (0 when undefined), then
  unweighted means over the generators that have a pair.

``as_printed`` holds the three means as eval.py prints them (percent, two decimals), for a
byte-exact comparison with its output.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vigil.core.metrics.common import NAN

__all__ = ["skyra_eval_pairs", "skyra_eval_reads_fake", "skyra_eval_scores"]

_FIELDS = ("gt", "answer", "video_id", "aigc_model_name")


def skyra_eval_reads_fake(answer: str) -> bool:
    """How eval.py reads an answer: Fake unless it is ``real`` in any case.

    >>> [skyra_eval_reads_fake(a) for a in ("Real", "REAL", "Fake", "Error", "not sure")]
    [False, False, True, True, True]
    """
    return str(answer).lower() != "real"


def _field(row: Any, key: str) -> Any:
    return row.get(key) if isinstance(row, Mapping) else getattr(row, key, None)


def _base_id(video_id: Any) -> str | None:
    """The part after the first ``/`` of a video id; None when there is none (eval.py skips the row)."""
    _, slash, base = str(video_id).partition("/")
    return base if slash and base else None


def _read(rows: Sequence[Any]) -> list[tuple[str, str | None, str]]:
    """The rows eval.py keeps, as (base id, generator or None for a real clip, answer)."""
    out = []
    for row in rows:
        values = [_field(row, key) for key in _FIELDS]
        base = _base_id(values[2]) if None not in values else None
        if base is not None:
            model = str(values[3])
            out.append((base, None if model.lower() == "real" else model, str(values[1])))
    return out


def skyra_eval_pairs(rows: Sequence[Any]) -> dict[str, list[tuple[bool, bool]]]:
    """The (real read as Fake, fake read as Fake) pairs of each generator, by eval.py's rules.

    ``rows`` are :class:`~vigil.core.evaluation.Prediction` objects or mappings with the same keys
    (a prediction file from any tool). Generators come sorted; a generator without a pair is absent.

    >>> rows = [{"video_id": "Real/a", "aigc_model_name": "Real", "gt": "Real", "answer": "Error"},
    ...         {"video_id": "G/a", "aigc_model_name": "G", "gt": "Fake", "answer": "Real"},
    ...         {"video_id": "G/b", "aigc_model_name": "G", "gt": "Fake", "answer": "Fake"}]
    >>> skyra_eval_pairs(rows)  # G/b has no real partner
    {'G': [(True, False)]}
    """
    reals: dict[str, bool] = {}
    fakes: dict[str, dict[str, bool]] = defaultdict(dict)  # base id -> generator -> read as Fake
    for base, generator, answer in _read(rows):  # a later row for the same clip wins
        if generator is None:
            reals[base] = skyra_eval_reads_fake(answer)
        else:
            fakes[base][generator] = skyra_eval_reads_fake(answer)
    pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for base, by_generator in fakes.items():
        if base in reals:
            for generator, fake in by_generator.items():
                pairs[generator].append((reals[base], fake))
    return dict(sorted(pairs.items()))


def _generator_scores(pairs: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    """Balanced accuracy, fake recall and F1 of one generator's pairs, computed as sklearn does
    (so the floats are the same ones, not just close)."""
    n = len(pairs)
    tp = sum(fake for _, fake in pairs)  # fakes read as Fake
    fp = sum(real for real, _ in pairs)  # reals read as Fake
    tn, fn = n - fp, n - tp
    f1_denominator = (tp + fn) + (tp + fp)
    return {
        "pairs": n,
        "balanced_accuracy": float(np.mean(np.array([tn, tp], dtype=float) / n)),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / f1_denominator if f1_denominator else 0.0,
    }


def _percent(value: float) -> str | None:
    return None if np.isnan(value) else f"{value * 100:.2f}"


def skyra_eval_scores(rows: Sequence[Any]) -> dict[str, Any]:
    """Skyra's eval.py on a prediction file: per-generator balanced accuracy, fake recall and F1 over
    complete pairs (an answer other than Real reads as Fake), and their unweighted means.

    Also ``generators`` and ``pairs`` (scored), ``read_as_fake`` (rows whose answer is neither Real
    nor Fake, e.g. Vigil's ``Error``, among the rows eval.py reads), ``unpaired_fakes`` and
    ``unpaired_reals`` (clips it leaves out), ``as_printed`` and ``per_generator``. With no pair at all
    eval.py stops without a number: the means are nan.

    >>> rows = [{"video_id": "Real/a", "aigc_model_name": "Real", "gt": "Real", "answer": "Real"},
    ...         {"video_id": "G/a", "aigc_model_name": "G", "gt": "Fake", "answer": "Error"}]
    >>> s = skyra_eval_scores(rows)  # the Error reads as Fake: both clips right
    >>> s["balanced_accuracy"], s["recall"], s["f1"], s["read_as_fake"], s["as_printed"]["acc"]
    (1.0, 1.0, 1.0, 1, '100.00')
    """
    pairs = skyra_eval_pairs(rows)
    per_generator = {g: _generator_scores(p) for g, p in pairs.items()}
    means = {key: float(np.mean([g[key] for g in per_generator.values()])) if per_generator else NAN
             for key in ("balanced_accuracy", "recall", "f1")}
    read = _read(rows)
    real_bases = {base for base, generator, _ in read if generator is None}
    fake_clips = {(base, generator) for base, generator, _ in read if generator is not None}
    return {
        **means,
        "generators": len(per_generator),
        "pairs": sum(g["pairs"] for g in per_generator.values()),
        "read_as_fake": sum(answer.lower() not in ("real", "fake") for _, _, answer in read),
        "unpaired_fakes": sum(base not in real_bases for base, _ in fake_clips),
        "unpaired_reals": len(real_bases - {base for base, _ in fake_clips}),
        "as_printed": {"acc": _percent(means["balanced_accuracy"]), "recall": _percent(means["recall"]),
                       "f1": _percent(means["f1"])},
        "per_generator": per_generator,
    }
