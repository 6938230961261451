"""The manifest schema (vigil.core.sample) and group-aware stable splits (vigil.core.splits)."""

from __future__ import annotations

import doctest
import hashlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import vigil.core.sample as sample_mod
import vigil.core.splits as splits_mod
from vigil.core.sample import (
    MANIFEST_COLUMNS,
    MANIFEST_SCHEMA,
    ManifestSchemaError,
    Sample,
    read_manifest,
    write_manifest,
)
from vigil.core.splits import assign_splits, group_key, split_for_key, split_leaks

SALT = "test-salt"
FRACTIONS = dict(train_fraction=0.8, val_fraction=0.1)


def sid(i: int) -> str:
    return hashlib.sha256(f"clip-{i}".encode()).hexdigest()


def test_doctests():
    for module in (sample_mod, splits_mod):
        result = doctest.testmod(module)
        assert result.failed == 0, f"{module.__name__}: {result.failed} doctest(s) failed"


# --- manifest schema ---------------------------------------------------------------------------


def test_schema_is_derived_from_the_model():
    assert list(MANIFEST_COLUMNS) == list(Sample.model_fields)
    assert MANIFEST_SCHEMA.field("pair_id").nullable and not MANIFEST_SCHEMA.field("sample_id").nullable
    assert MANIFEST_SCHEMA.field("artifact_types").type == pa.list_(pa.string())
    assert MANIFEST_SCHEMA.field("crawled_at").type == pa.timestamp("us", tz="UTC")


def test_round_trip_keeps_values_and_nulls(tmp_path):
    rows = [Sample.example(sample_id=sid(1), pair_id=None, bitrate=None, prompt=None, artifact_types=[],
                           artifact_count=0, label="real", generator="real"),
            Sample.example(sample_id=sid(0), artifact_types=["a", "b"], artifact_count=2)]
    df = read_manifest(write_manifest(rows, tmp_path / "m.parquet"))
    assert list(df.columns) == list(MANIFEST_COLUMNS)
    assert list(df["sample_id"]) == sorted([sid(0), sid(1)])  # sorted: same data, same bytes
    back = {r["sample_id"]: Sample.model_validate(r) for r in sample_mod.frame_to_rows(df)}
    assert back == {r.sample_id: r for r in rows}
    assert str(df["bitrate"].dtype) == "Int64" and df["crawled_at"].dt.tz is not None


def test_same_rows_same_bytes(tmp_path):
    rows = [Sample.example(sample_id=sid(i)) for i in range(5)]
    a = write_manifest(rows, tmp_path / "a.parquet").read_bytes()
    b = write_manifest(list(reversed(rows)), tmp_path / "b.parquet").read_bytes()
    assert a == b


def test_row_validation_rejects_bad_values():
    with pytest.raises(ValidationError, match="sample_id"):
        Sample.example(sample_id="not-a-sha")
    with pytest.raises(ValidationError, match="label"):
        Sample.example(label="maybe")
    with pytest.raises(ValidationError, match="split"):
        Sample.example(split="holdout")


def test_read_names_missing_and_mistyped_columns(tmp_path):
    table = sample_mod.manifest_table([Sample.example()])
    pq.write_table(table.drop_columns(["fps"]), tmp_path / "missing.parquet")
    with pytest.raises(ManifestSchemaError, match="'fps' is missing"):
        read_manifest(tmp_path / "missing.parquet")
    idx = table.schema.get_field_index("width")
    pq.write_table(table.set_column(idx, "width", pa.array(["160"])), tmp_path / "typed.parquet")
    with pytest.raises(ManifestSchemaError, match="'width' has type string"):
        read_manifest(tmp_path / "typed.parquet")


# --- splits ------------------------------------------------------------------------------------


def test_group_key_priority():
    assert group_key("s", "p", "d") == "pair:p"
    assert group_key("s", None, "d") == "dup:d"
    assert group_key("s", float("nan"), None) == "sample:s"  # pandas null from a DataFrame
    assert group_key("s", "", "") == "sample:s"


ids = st.integers(min_value=0, max_value=10_000)


@settings(max_examples=50, deadline=None, database=None)
@given(st.lists(st.tuples(ids, st.integers(0, 50), st.booleans(), st.integers(0, 30), st.booleans()),
                min_size=1, max_size=200))
def test_linked_samples_share_a_split(rows):
    """Samples sharing a pair (or, without a pair, a near-duplicate group) are never split apart."""
    df = pd.DataFrame({
        "sample_id": [sid(i) for i, *_ in rows],
        "pair_id": [f"p{p}" if has_p else None for _, p, has_p, _, _ in rows],
        "near_duplicate_group": [f"g{g}" if has_g else None for _, _, _, g, has_g in rows],
    })
    df["split"] = assign_splits(df, salt=SALT, **FRACTIONS)
    if df["pair_id"].notna().any():
        assert df.groupby("pair_id")["split"].nunique().max() == 1
    unpaired = df[df["pair_id"].isna()]
    if unpaired["near_duplicate_group"].notna().any():
        assert unpaired.groupby("near_duplicate_group")["split"].nunique().max() == 1


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(0, 2**32))
def test_adding_data_never_moves_a_sample(n_old, n_new, seed):
    def frame(lo, hi):
        return pd.DataFrame({"sample_id": [sid(seed + i) for i in range(lo, hi)],
                             "pair_id": [f"p{(seed + i) // 2}" for i in range(lo, hi)]})

    old = frame(0, n_old)
    grown = pd.concat([frame(n_old, n_old + n_new), old], ignore_index=True).sample(frac=1, random_state=seed % 1000)
    before = dict(zip(old["sample_id"], assign_splits(old, salt=SALT, **FRACTIONS)))
    after = dict(zip(grown["sample_id"], assign_splits(grown, salt=SALT, **FRACTIONS)))
    assert all(after[k] == v for k, v in before.items())


def test_fractions_are_respected_on_10k_groups():
    keys = [f"pair:{i}" for i in range(10_000)]
    counts = pd.Series([split_for_key(k, salt=SALT, train_fraction=0.7, val_fraction=0.2) for k in keys]).value_counts()
    # binomial standard deviation at n=10k is at most 0.005; allow 4 sigma
    assert abs(counts["train"] / 10_000 - 0.7) < 0.02
    assert abs(counts["val"] / 10_000 - 0.2) < 0.02
    assert abs(counts["test"] / 10_000 - 0.1) < 0.02


def test_salt_reshuffles_and_bad_fractions_are_refused():
    keys = [f"k{i}" for i in range(200)]
    a = [split_for_key(k, salt="a", **FRACTIONS) for k in keys]
    b = [split_for_key(k, salt="b", **FRACTIONS) for k in keys]
    assert a != b
    with pytest.raises(ValueError, match="fractions"):
        split_for_key("k", salt="a", train_fraction=0.9, val_fraction=0.2)


def test_split_leaks_reports_cross_split_links():
    df = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "pair_id": ["p", "p", None, None],
                       "near_duplicate_group": [None, None, "g", "g"],
                       "split": ["train", "train", "train", "test"]})
    assert split_leaks(df) == [("near_duplicate_group", "g", ("test", "train"))]
    df["split"] = assign_splits(df, salt=SALT, **FRACTIONS)
    assert split_leaks(df) == []
