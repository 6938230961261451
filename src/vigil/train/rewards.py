"""GRPO reward functions, in TRL's shape ``(completions, **kwargs) -> list[float]``.

TRL passes ``completions`` as strings (standard datasets) or as conversations
``[[{"role": "assistant", "content": "..."}]]`` (conversational ones), and every other dataset
column as a keyword list aligned with them (``label=[...]``, ``truth=[...]``,
``duration_s=[...]``), plus extras (``prompts``, ``completion_ids``, ``trainer_state``,
``log_extra``…) that these functions accept and ignore.

All reading of the output goes through :func:`vigil.core.grammar.check` and all overlap through
:mod:`vigil.core.grounding`; nothing here parses text. ``params.yaml`` names the rewards to use
(and their weights) by their keys in :data:`REWARD_FUNCTIONS`.

>>> from vigil.core.grammar import Evidence, render
>>> fake = render("Fake", ["The cup", Evidence("Shape Distortion", (0.5, 1.0), (0.1, 0.1, 0.4, 0.4)), "bends."])
>>> [round(r, 4) for r in skyra_reward([fake, fake], label=["fake", "real"])]
[1.5545, -0.2]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from vigil.core.grammar import ParsedOutput, check
from vigil.core.grounding import match_evidence

# Skyra's exploration bonus per unit of ln(1 + N): rewards naming grounded evidence at all, with a
# concave (logarithmic) gain so that the first items are worth far more than later ones.
EXPLORATION_WEIGHT = 0.8
# The bonus stops growing at N = 3 (ln 4): beyond that, more evidence would only teach the policy
# to pad its reasoning with weak or duplicate claims.
EXPLORATION_CAP = math.log(4.0)
# A real clip called Fake is penalised (a false alarm discredits a detector more than a miss), while
# a fake clip called Real only gets no reward: the asymmetry keeps the policy from drifting
# towards answering Fake whenever it is unsure.
FALSE_ALARM_PENALTY = -0.2
# The accuracy term of a correct, well-formed answer.
ACCURACY_REWARD = 1.0
# A matched ground-truth artifact named with the wrong L3 type still earns half its overlap: the
# location was found, the diagnosis was not.
TYPE_MISMATCH_FACTOR = 0.5

SKYRA_MIN = FALSE_ALARM_PENALTY
SKYRA_MAX = ACCURACY_REWARD + EXPLORATION_WEIGHT * EXPLORATION_CAP

RewardFunction = Callable[..., list[float]]


# --------------------------------------------------------------------------------------------
# Helpers


def _message_text(message: Any) -> str:
    """The text of one chat message; its reasoning (split off by some chat templates) goes back
    into a ``<think>`` block so that the grammar sees the whole output."""
    if not isinstance(message, dict):
        return message if isinstance(message, str) else ""
    content = message.get("content")
    if isinstance(content, list):  # multimodal content parts
        content = "".join((p.get("text") or "") if isinstance(p, dict) else str(p) for p in content)
    text = content if isinstance(content, str) else ""
    reasoning = message.get("reasoning_content") or message.get("thinking")
    if isinstance(reasoning, str) and reasoning and "<think>" not in text.lower():
        text = f"<think>{reasoning}</think>{text}"
    return text


def _completion_text(completion: Any) -> str:
    """One completion as text, whether a string or a conversation (its assistant messages).

    >>> _completion_text("<answer>Fake</answer>")
    '<answer>Fake</answer>'
    >>> _completion_text([{"role": "assistant", "content": "<answer>Real</answer>"}])
    '<answer>Real</answer>'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _message_text(completion)
    if isinstance(completion, (list, tuple)):
        return "".join(_message_text(m) for m in completion
                       if not isinstance(m, dict) or m.get("role", "assistant") == "assistant")
    return ""


def _label(value: Any) -> str:
    """``"real"``/``"fake"`` from a dataset label in any case; anything else is a data error."""
    label = value.strip().lower() if isinstance(value, str) else None
    if label not in ("real", "fake"):
        raise ValueError(f"label must be 'real' or 'fake', got {value!r}")
    return label


def _duration(value: Any) -> float | None:
    """A clip duration in seconds, or None when unknown (missing, NaN, not a number)."""
    try:
        d = float(value)
    except (TypeError, ValueError):
        return None
    return d if math.isfinite(d) and d > 0 else None


def _column(values: Sequence[Any] | None, n: int, name: str) -> list[Any]:
    """A keyword column aligned with the completions (None: all missing)."""
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values for {n} completions")
    return values


def _parsed(completion: Any, duration: Any) -> ParsedOutput:
    return check(_completion_text(completion), duration_s=_duration(duration))


def _field(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


def _truth(items: Any) -> list[tuple[str | None, tuple[float, float] | None, tuple[float, ...] | None]]:
    """Ground-truth artifacts (dicts or objects with ``type``, ``t``, ``bbox``) as match tuples."""
    if items is None:
        return []
    out = []
    for item in items:
        t, bbox = _field(item, "t"), _field(item, "bbox")
        out.append((_field(item, "type"),
                    None if t is None else tuple(float(v) for v in t),
                    None if bbox is None else tuple(float(v) for v in bbox)))
    return out


# --------------------------------------------------------------------------------------------
# Rewards


def skyra_reward(completions: Sequence[Any], label: Sequence[str], duration_s: Sequence[Any] | None = None,
                 **kwargs: Any) -> list[float]:
    """Skyra's asymmetric reward: accuracy plus a capped bonus for grounded evidence.

    * broken output (any grammar violation, given the clip's ``duration_s`` when known, or no
      answer): 0.0;
    * correct answer: ``1.0 + 0.8 * min(ln(1 + N), ln 4)``, the accuracy term plus Skyra's
      exploration bonus, capped at N = 3, where N counts well-formed evidence (a time span and a
      box). A correct **Real** answer may only point at typeless "normal segments"; one whose
      reasoning names artifact types contradicts itself and gets 0.0, as if broken;
    * a real clip called Fake: -0.2 (:data:`FALSE_ALARM_PENALTY`);
    * a fake clip called Real: 0.0.

    Labels are ``"real"``/``"fake"`` in any case; any other label raises ``ValueError``.

    >>> from vigil.core.grammar import Evidence, render
    >>> ev = Evidence("Unnatural Blur", (1.0, 2.0), (0.1, 0.1, 0.4, 0.4))
    >>> [round(r, 4) for r in skyra_reward([render("Fake", [ev]), render("Fake", [ev] * 5)], ["fake", "fake"])]
    [1.5545, 2.109]
    >>> skyra_reward([render("Real", ["Natural motion."]), render("Real", ["Blur", ev])], ["Real", "real"])
    [1.0, 0.0]
    >>> skyra_reward(["<think>The hand melts", [{"role": "assistant", "content": render("Real", ["ok"])}]],
    ...              label=["fake", "fake"])
    [0.0, 0.0]
    >>> skyra_reward([render("Fake", [ev])], ["fake"], duration_s=[1.5])  # evidence ends past the clip
    [0.0]

    Skyra's zero box (the whole frame) is well-formed evidence; another empty box breaks the output:

    >>> whole = "<type>Camera Motion Inconsistency</type> in <t>[1.0, 2.0]</t> at <bbox>[0.0, 0.0, 0.0, 0.0]</bbox>"
    >>> flat = "<type>Camera Motion Inconsistency</type> in <t>[1.0, 2.0]</t> at <bbox>[0.2, 0.0, 0.2, 0.0]</bbox>"
    >>> [round(r, 4) for r in skyra_reward([f"<think>{whole}</think><answer>Fake</answer>",
    ...                                     f"<think>{flat}</think><answer>Fake</answer>"], ["fake", "fake"])]
    [1.5545, 0.0]
    """
    n = len(completions)
    rewards = []
    for completion, lab, dur in zip(completions, _column(label, n, "label"),
                                    _column(duration_s, n, "duration_s")):
        truth = _label(lab)
        out = _parsed(completion, dur)
        if not out.ok or out.label is None:
            rewards.append(0.0)
        elif out.label != truth:
            rewards.append(FALSE_ALARM_PENALTY if truth == "real" else 0.0)
        elif out.label == "real" and any(e.type is not None for e in out.evidence):
            rewards.append(0.0)  # "Real" while naming artifacts: self-contradictory
        else:
            bonus = EXPLORATION_WEIGHT * min(math.log1p(out.n_well_formed), EXPLORATION_CAP)
            rewards.append(ACCURACY_REWARD + bonus)
    return rewards


def grounding_reward(completions: Sequence[Any], label: Sequence[str], truth: Sequence[Any],
                     duration_s: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """How well a Fake answer's evidence locates the clip's ground-truth artifacts, in [0, 1].

    Goes beyond Skyra, which only counts evidence. Each ground-truth artifact (a dict or object
    with ``type``, ``t`` = [start, end] and ``bbox`` = [x1, y1, x2, y2] or None) is paired with at
    most one predicted evidence by :func:`vigil.core.grounding.match_evidence` and scores

        temporal IoU × box IoU (only when the truth has a box) × (1 if the type matches else 0.5)

    and the reward is the mean over the ground truth (an unmatched artifact scores 0). A whole-frame
    box (``[0, 0, 1, 1]``, or Skyra's zero box ``[0, 0, 0, 0]``) scores the truth box's share of
    the frame, so it pays only for artifacts that do span the frame.

    Broken output (see :func:`skyra_reward`) or a Real answer scores 0.0. Clips without ground
    truth (``truth`` None or empty), including every real clip, score 0.0: real clips are
    rewarded by :func:`skyra_reward` alone.

    >>> from vigil.core.grammar import Evidence, render
    >>> gt = [{"type": "Unnatural Blur", "t": [1.0, 3.0], "bbox": [0.0, 0.0, 0.5, 0.5]}]
    >>> exact = render("Fake", [Evidence("Unnatural Blur", (1.0, 3.0), (0.0, 0.0, 0.5, 0.5))])
    >>> wrong_type = render("Fake", [Evidence("Texture Jittering", (2.0, 3.0), (0.0, 0.0, 0.5, 0.5))])
    >>> grounding_reward([exact, wrong_type], ["fake", "fake"], [gt, gt])
    [1.0, 0.25]
    >>> grounding_reward([exact, exact], ["fake", "real"], [None, []])
    [0.0, 0.0]
    >>> no_box = [{"type": "Unnatural Blur", "t": [1.0, 3.0], "bbox": None}]
    >>> grounding_reward([exact, render("Real", ["Fine."])], ["fake", "fake"], [no_box, no_box])
    [1.0, 0.0]
    >>> whole = ("<think><type>Unnatural Blur</type> in <t>[1.0, 3.0]</t> at <bbox>[0, 0, 0, 0]</bbox>"
    ...          "</think><answer>Fake</answer>")
    >>> grounding_reward([whole, whole], ["fake", "fake"], [gt, no_box])  # truth covers 1/4 of the frame; no box
    [0.25, 1.0]
    """
    n = len(completions)
    rewards = []
    for completion, lab, items, dur in zip(completions, _column(label, n, "label"), _column(truth, n, "truth"),
                                           _column(duration_s, n, "duration_s")):
        lab = _label(lab)
        gt = _truth(items)
        if lab != "fake" or not gt:
            rewards.append(0.0)
            continue
        out = _parsed(completion, dur)
        if not out.ok or out.label != "fake":
            rewards.append(0.0)
            continue
        predicted = [(e.type, e.t, e.bbox) for e in out.evidence]
        total = 0.0
        for m in match_evidence(predicted, gt):
            if m.prediction_index < 0:
                continue
            has_box = gt[m.truth_index][2] is not None
            total += (m.temporal_iou * (m.box_iou if has_box else 1.0)
                      * (1.0 if m.type_match else TYPE_MISMATCH_FACTOR))
        rewards.append(min(1.0, max(0.0, total / len(gt))))
    return rewards


REWARD_FUNCTIONS: dict[str, RewardFunction] = {
    "skyra": skyra_reward,
    "grounding": grounding_reward,
}
