"""Group-aware, stable train/val/test splits.

Two rules keep evaluation honest as the dataset grows:

* **Group-aware.** A fake and the real clip it was generated from (same ``pair_id``), and
  re-encodes of the same content (same ``near_duplicate_group``), land in the same split; otherwise
  the model is tested on content it was trained on and every metric is inflated.
* **Stable.** A sample's split depends only on its own group key and a salt, never on what else is
  in the dataset, so publishing more data never moves an existing sample between splits (a test
  clip that became a training clip would silently contaminate comparisons across versions).

The group key is the first present of ``pair_id``, ``near_duplicate_group``, ``sample_id``; the
split is a bucket of ``sha256(salt, key)`` against the train/val fractions.

>>> split_for_key("pair-7", salt="s", train_fraction=0.8, val_fraction=0.1) in SPLITS
True
>>> group_key("f" * 64, pair_id="pair-7", near_duplicate_group="g1")
'pair:pair-7'
>>> group_key("f" * 64, near_duplicate_group="g1")
'dup:g1'
>>> group_key("f" * 64)
'sample:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'

Limit: the key is chosen per sample, so if a clip has a ``pair_id`` and *also* a near-duplicate
that has none, the near-duplicate follows its duplicate group, not the pair. Pairing them
transitively (connected components) would let new data merge groups and move old samples, which
breaks stability; :func:`split_leaks` reports such cases so that validation can flag them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

from vigil.core.sample import SPLITS

_SCALE = float(1 << 64)


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and value is not pd.NA \
        and str(value) != ""


def group_key(sample_id: str, pair_id: str | None = None, near_duplicate_group: str | None = None) -> str:
    """The key that decides a sample's split: pair, else near-duplicate group, else the sample.

    The kind prefix keeps a pair id from colliding with a duplicate-group id of the same text.
    """
    if _present(pair_id):
        return f"pair:{pair_id}"
    if _present(near_duplicate_group):
        return f"dup:{near_duplicate_group}"
    return f"sample:{sample_id}"


def bucket(key: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by ``salt`` and ``key`` alone.

    >>> bucket("k", "s") == bucket("k", "s"), 0 <= bucket("k", "s") < 1
    (True, True)
    """
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def split_for_key(key: str, *, salt: str, train_fraction: float, val_fraction: float) -> str:
    """'train', 'val' or 'test' for a group key.

    >>> split_for_key("x", salt="s", train_fraction=1.0, val_fraction=0.0)
    'train'
    >>> split_for_key("x", salt="s", train_fraction=0.0, val_fraction=0.0)
    'test'
    """
    if not (0 <= train_fraction <= 1 and 0 <= val_fraction <= 1 and train_fraction + val_fraction <= 1):
        raise ValueError(f"fractions must lie in [0, 1] and sum to at most 1: train={train_fraction}, val={val_fraction}")
    u = bucket(key, salt)
    if u < train_fraction:
        return "train"
    if u < train_fraction + val_fraction:
        return "val"
    return "test"


def split_for_sample(sample_id: str, pair_id: str | None = None, near_duplicate_group: str | None = None, *,
                     salt: str, train_fraction: float, val_fraction: float) -> str:
    """The split of one sample (see :func:`group_key`)."""
    return split_for_key(group_key(sample_id, pair_id, near_duplicate_group), salt=salt,
                         train_fraction=train_fraction, val_fraction=val_fraction)


def assign_splits(df: pd.DataFrame, *, salt: str, train_fraction: float, val_fraction: float) -> pd.Series:
    """The split of every row of a manifest-like frame (``sample_id``, optional ``pair_id`` and
    ``near_duplicate_group`` columns), as a Series aligned with ``df``. Pure: ``df`` is not changed.

    >>> df = pd.DataFrame({"sample_id": ["a", "b", "c"], "pair_id": ["p", "p", None]})
    >>> s = assign_splits(df, salt="s", train_fraction=0.5, val_fraction=0.25)
    >>> s.iloc[0] == s.iloc[1]
    True
    """
    pairs = df["pair_id"] if "pair_id" in df else pd.Series([None] * len(df), index=df.index)
    dups = df["near_duplicate_group"] if "near_duplicate_group" in df else pd.Series([None] * len(df), index=df.index)
    cache: dict[str, str] = {}
    out = []
    for sid, pid, dup in zip(df["sample_id"], pairs, dups):
        key = group_key(sid, pid, dup)
        if key not in cache:
            cache[key] = split_for_key(key, salt=salt, train_fraction=train_fraction, val_fraction=val_fraction)
        out.append(cache[key])
    return pd.Series(out, index=df.index, name="split", dtype=object)


def split_leaks(df: pd.DataFrame) -> list[tuple[str, str, tuple[str, ...]]]:
    """Links that cross splits: ``(column, value, splits)`` for every ``pair_id`` or
    ``near_duplicate_group`` value whose rows are in more than one split. Empty is good.

    >>> df = pd.DataFrame({"pair_id": ["p", "p"], "near_duplicate_group": [None, None],
    ...                    "split": ["train", "test"]})
    >>> split_leaks(df)
    [('pair_id', 'p', ('test', 'train'))]
    """
    leaks: list[tuple[str, str, tuple[str, ...]]] = []
    for column in ("pair_id", "near_duplicate_group"):
        if column not in df:
            continue
        linked = df[[column, "split"]].dropna(subset=[column])
        linked = linked[linked[column].astype(str) != ""]
        for value, splits in linked.groupby(column)["split"]:
            distinct = tuple(sorted(set(splits)))
            if len(distinct) > 1:
                leaks.append((column, str(value), distinct))
    return leaks


def split_counts(splits: Iterable[str]) -> dict[str, int]:
    """How many of each split (all three keys present)."""
    counts = dict.fromkeys(SPLITS, 0)
    for s in splits:
        counts[s] = counts.get(s, 0) + 1
    return counts
