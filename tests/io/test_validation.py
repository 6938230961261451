"""Great Expectations suite on the manifest table (vigil.io.validation)."""

from __future__ import annotations

import hashlib
import json
import logging

import pandas as pd
import pytest

from vigil.config.params import ValidationParams
from vigil.core.sample import Sample, read_manifest, write_manifest
from vigil.core.splits import assign_splits
from vigil.io.validation import NO_SETTING, SUITE_NAME, ValidationResult, setting_for, validate_manifest

GENERATORS = ["gen-a", "gen-b"]
PARAMS = ValidationParams(min_rows=4, min_fake_fraction=0.3, max_fake_fraction=0.7)
log = logging.getLogger(__name__)


def _sid(i: int) -> str:
    return hashlib.sha256(f"v-{i}".encode()).hexdigest()


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> pd.DataFrame:
    """24 rows: 12 real/fake pairs over two generators, splits assigned group-aware."""
    rows = []
    for i in range(24):
        fake = i % 2 == 1
        rows.append(Sample.example(
            sample_id=_sid(i), pair_id=f"pair-{i // 2}", label="fake" if fake else "real",
            generator=GENERATORS[(i // 2) % 2] if fake else "real", fps=8.0 + i % 3, width=160, height=120,
            n_frames=16, near_duplicate_group=None, bitrate=None if i == 3 else 100_000,
            artifact_types=["temporal_flicker"] if fake else [], artifact_count=1 if fake else 0))
    df = pd.DataFrame([r.model_dump() for r in rows])
    df["split"] = assign_splits(df, salt="s", train_fraction=0.5, val_fraction=0.25)
    path = write_manifest(df, tmp_path_factory.mktemp("manifest") / "manifest.parquet")
    return read_manifest(path)  # exactly what validation sees in the pipeline


def _failed(result: ValidationResult) -> set[str]:
    return set(result.failed_names())


def test_good_manifest_passes_and_builds_docs(good, tmp_path):
    result = validate_manifest(good, PARAMS, GENERATORS, tmp_path / "docs")
    log.info("GX validate: %s", json.dumps({k: v for k, v in result.statistics.items() if k.endswith("_s")}))
    assert result.success, result.summary()
    assert result.docs_index is not None and result.docs_index.is_file()
    assert list((tmp_path / "docs" / "validations").rglob("*.html")), "validation page missing from Data Docs"
    names = {e.name for e in result.expectations}
    for expected in ("expect_column_values_to_be_unique(sample_id)", "expect_column_mean_to_be_between(_is_fake)",
                     "expect_table_row_count_to_be_between", "expect_column_to_exist(phash)"):
        assert expected in names
    balance = next(e for e in result.expectations if e.name == "expect_column_mean_to_be_between(_is_fake)")
    assert balance.observed == pytest.approx(0.5)
    assert result.statistics["unsuccessful_expectations"] == 0
    with pytest.raises(Exception):
        result.success = False  # frozen


def _modified(good: pd.DataFrame, *cases: str) -> pd.DataFrame:
    """``good`` with the named defects, each on its own row so that they do not interact."""
    df = good.copy()
    for case in cases:
        if case == "missing_column":
            df = df.drop(columns=["fps"])
        elif case == "bad_label":
            df.loc[0, "label"] = "probably-fake"
        elif case == "unknown_generator":
            df.loc[1, "generator"] = "gen-z"
        elif case == "duplicate_id":
            df.loc[2, "sample_id"] = df.loc[4, "sample_id"]
        elif case == "bad_id":
            df.loc[3, "sample_id"] = "XYZ"
        elif case == "fps_out_of_range":
            df.loc[5, "fps"] = 1000.0
        elif case == "zero_frames":
            df.loc[6, "n_frames"] = 0
        elif case == "imbalance":
            df.loc[df["label"] == "real", "label"] = "fake"
            df.loc[0, "label"] = "real"
        elif case == "split_leak":
            partner = df.index[(df["pair_id"] == df.loc[0, "pair_id"])][-1]
            df.loc[partner, "split"] = {"train": "test", "val": "test", "test": "train"}[df.loc[0, "split"]]
        elif case == "too_few_rows":
            df = df[df["pair_id"] == "pair-0"]  # one real/fake pair: balanced and leak-free
        else:
            raise ValueError(case)
    return df


EXPECTATION_FOR = {
    "missing_column": "expect_column_to_exist(fps)",
    "bad_label": "expect_column_values_to_be_in_set(label)",
    "unknown_generator": "expect_column_values_to_be_in_set(generator)",
    "duplicate_id": "expect_column_values_to_be_unique(sample_id)",
    "bad_id": "expect_column_values_to_match_regex(sample_id)",
    "fps_out_of_range": "expect_column_values_to_be_between(fps)",
    "zero_frames": "expect_column_values_to_be_between(n_frames)",
    "imbalance": "expect_column_mean_to_be_between(_is_fake)",
    "split_leak": "expect_column_values_to_be_in_set(_group_in_one_split)",
    "too_few_rows": "expect_table_row_count_to_be_between",
}
# Row-level defects on distinct rows are checked in one validation (GX costs ~1 s a run); an
# exact match of the failed set shows that each defect fails its own expectation and no other.
ROW_DEFECTS = ("bad_label", "unknown_generator", "duplicate_id", "bad_id", "fps_out_of_range", "zero_frames")


def test_row_defects_each_fail_their_expectation(good):
    bad = _modified(good, *ROW_DEFECTS)
    sid = bad["sample_id"]  # the ids of the rows _modified changed
    result = validate_manifest(bad, PARAMS, GENERATORS, docs_dir=None)
    assert not result.success
    assert _failed(result) == {EXPECTATION_FOR[c] for c in ROW_DEFECTS}, result.summary()
    generator = next(e for e in result.failures if e.name.endswith("(generator)"))
    assert generator.observed["unexpected_sample"] == ["gen-z"]
    # each row-level failure names its row and the offending value, so that ingest can quarantine it alone
    rejected = {sid: [(r.expectation, r.value) for r in why] for sid, why in result.rejected_rows().items()}
    assert rejected == {
        sid[0]: [(EXPECTATION_FOR["bad_label"], "probably-fake")],
        sid[1]: [(EXPECTATION_FOR["unknown_generator"], "gen-z")],
        "XYZ": [(EXPECTATION_FOR["bad_id"], "XYZ")],
        sid[5]: [(EXPECTATION_FOR["fps_out_of_range"], 1000.0)],
        sid[6]: [(EXPECTATION_FOR["zero_frames"], 0)],
    }, result.summary()
    fps = result.rejected_rows()[sid[5]][0]
    assert fps.column == "fps" and "validation.min_fps" in fps.bound and "validation.max_fps" in fps.bound
    # a repeated sample_id blames no single row: it judges the batch
    assert [e.name for e in result.batch_failures] == [EXPECTATION_FOR["duplicate_id"]]
    assert "bug" in result.batch_failures[0].advice
    assert sid[5][:12] in result.summary()


ADVICE_FOR = {
    "imbalance": "outside [validation.min_fake_fraction = 0.3, validation.max_fake_fraction = 0.7]",
    "split_leak": "no params setting fixes it",
    "too_few_rows": "validation.min_rows = 4 but the batch has 2 rows: crawl more or lower validation.min_rows in "
                    "params.yaml",
}


@pytest.mark.parametrize("case", ["imbalance", "split_leak", "too_few_rows"])
def test_table_defect_fails_its_expectation(good, case):
    result = validate_manifest(_modified(good, case), PARAMS, GENERATORS, docs_dir=None)
    assert not result.success
    assert _failed(result) == {EXPECTATION_FOR[case]}, result.summary()
    # a batch-level failure condemns no row on its own, and says which setting to change
    assert not result.rejected_rows()
    (failure,) = result.batch_failures
    assert ADVICE_FOR[case] in failure.advice and ADVICE_FOR[case] in result.summary()
    setting = setting_for(SUITE_NAME, failure.name)  # the table's setting, or that none fixes it
    assert ("no params" in failure.advice) if setting == NO_SETTING else \
        all(part in failure.advice for part in setting.split(", "))


def test_a_row_expectation_every_row_fails_judges_the_batch(good):
    # given a bound that no row meets (a params typo, not 24 bad clips)
    strict = PARAMS.model_copy(update={"min_fps": 100.0})
    # when validated; then nothing is quarantined row by row and the advice points at the bound
    result = validate_manifest(good, strict, GENERATORS, docs_dir=None)
    assert not result.success and not result.rejected_rows()
    (failure,) = result.batch_failures
    assert failure.systemic and "every one of the 24 rows" in failure.advice and "validation.min_fps" in failure.advice


def test_missing_column_fails_every_expectation_on_it_and_nothing_else(good):
    result = validate_manifest(_modified(good, "missing_column"), PARAMS, GENERATORS, docs_dir=None)
    failed = _failed(result)
    assert EXPECTATION_FOR["missing_column"] in failed
    assert all(name.endswith("(fps)") for name in failed), failed
    assert "(fps)" in result.summary()
