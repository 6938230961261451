"""Validation advice names the params.yaml setting to change (vigil.io.validation.SETTINGS), class
balance is reported for the whole version and for its new rows, clips whose source claims no label
are refused naming the source, and generators outside the allowed set name the setting."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from vigil.config.params import AnnotateParams, ValidationParams
from vigil.core.sample import Sample
from vigil.io.validation import (
    ANNOTATION_SUITE_NAME,
    BALANCE,
    GENERATOR_IN_SET,
    LABEL_KNOWN,
    NO_SETTING,
    SETTINGS,
    SUITE_NAME,
    PreviousVersion,
    SourceClaims,
    build_annotation_suite,
    build_suite,
    expectation_name,
    setting_for,
    validate_manifest,
)

PARAMS = ValidationParams(min_rows=2, min_fake_fraction=0.2, max_fake_fraction=0.8)
GENERATORS = ["gen-a"]


def _sid(i: int) -> str:
    return hashlib.sha256(f"adv-{i}".encode()).hexdigest()


def _table(labels: list[str], *, generator: str = "gen-a", source: str = "zoo-gallery") -> pd.DataFrame:
    rows = [Sample.example(sample_id=_sid(i), label=label, pair_id=None, source=source,
                           generator="real" if label == "real" else generator) for i, label in enumerate(labels)]
    return pd.DataFrame([r.model_dump() for r in rows])


def _suites():
    yield SUITE_NAME, build_suite(PARAMS, GENERATORS)
    for grounded in (None, 0, 3):
        yield ANNOTATION_SUITE_NAME, build_annotation_suite(AnnotateParams(), grounded_fakes=grounded)


def test_every_expectation_of_both_suites_has_a_setting_entry():
    # given both suites (the annotation one with and without grounded fakes to judge)
    used: dict[str, set[str]] = {SUITE_NAME: set(), ANNOTATION_SUITE_NAME: set()}
    for suite_name, suite in _suites():
        for e in suite.expectations:
            name = expectation_name(e.configuration)
            # when its setting is looked up; then there is one (a new expectation cannot ship without advice)
            setting = setting_for(suite_name, name)
            assert setting == NO_SETTING or all("." in part for part in setting.split(", ")), (name, setting)
            used[suite_name].add(name if name in SETTINGS[suite_name] else f"{name.split('(')[0]}(*)")
    # and the table holds no stale entry that no expectation uses
    for suite_name, table in SETTINGS.items():
        assert set(table) == used[suite_name], set(table) ^ used[suite_name]
    # and the annotation bounds are the annotate.* settings they come from
    for column in ("annotation_id", "_compliant", "_fake_evidence", "_label_agrees"):
        name = next(n for n in SETTINGS[ANNOTATION_SUITE_NAME] if n.endswith(f"({column})"))
        assert setting_for(ANNOTATION_SUITE_NAME, name).removeprefix("annotate.") in AnnotateParams.model_fields


def test_unknown_labels_and_unallowed_generators_are_refused_naming_source_and_setting():
    # given 8 labelled rows, two from a feed that claims no label, one claiming a generator no one
    # allows, and one from a source that derives generators from URL paths
    df = _table(["real", "fake"] * 4)
    df.loc[0:1, ["label", "source"]] = ["unknown", "rss-a"]
    df.loc[3, "generator"] = "sora-2"
    df.loc[5, ["generator", "source"]] = ["kling-v1", "listing-b"]
    sources = [SourceClaims("rss-a"), SourceClaims("listing-b", label="fake", generator_from_path=True)]

    # when validated
    result = validate_manifest(df, PARAMS, GENERATORS, None, sources=sources)

    # then each row is refused on its own, its detail naming the cause and the setting to change
    rejected = {sid: why for sid, why in result.rejected_rows().items()}
    for sid in df.loc[0:1, "sample_id"]:
        (why,) = rejected[sid]
        assert why.expectation == LABEL_KNOWN and why.source == "rss-a"
        assert "source rss-a claims no label" in why.describe() and "crawl.sources[rss-a].label" in why.describe()
    (sora,) = rejected[df.loc[3, "sample_id"]]
    assert sora.expectation == GENERATOR_IN_SET and "'sora-2'" in sora.describe()
    assert "validation.allowed_generators" in sora.describe() and "crawl.sources[zoo-gallery].generator" in sora.hint
    (kling,) = rejected[df.loc[5, "sample_id"]]
    assert "generator_from_path" in kling.hint and "list it in validation.allowed_generators" in kling.hint
    assert set(rejected) == {df.loc[i, "sample_id"] for i in (0, 1, 3, 5)}
    assert "crawl.sources[rss-a].label" in result.summary()


def test_a_table_whose_every_row_claims_no_label_is_refused_naming_each_source():
    # given a first batch from two feeds that claim no label
    df = _table(["unknown"] * 4, generator="unknown")
    df.loc[2:, "source"] = "rss-b"
    df.loc[:1, "source"] = "rss-a"

    # when validated; then the batch is refused (no row is blamed alone) naming both sources' settings
    result = validate_manifest(df, PARAMS, GENERATORS, None)
    assert not result.success and not result.rejected_rows()
    advice = {e.name: e.advice for e in result.batch_failures}
    assert set(advice) == {LABEL_KNOWN, BALANCE}
    assert "crawl.sources[rss-a].label" in advice[LABEL_KNOWN] and "crawl.sources[rss-b].label" in advice[LABEL_KNOWN]
    assert "claims no label" in advice[LABEL_KNOWN] and "crawl.sources[<name>].label" in advice[BALANCE]


def test_class_balance_advice_gives_the_version_share_and_the_new_rows_share():
    # given a version of 2 reals + 2 fakes, and 8 new fakes from one generator's gallery
    old = _table(["real", "fake", "real", "fake"])
    new = _table(["fake"] * 8, generator="gen-a", source="gallery").assign(sample_id=[_sid(100 + i) for i in range(8)])
    df = pd.concat([old, new], ignore_index=True)
    previous = PreviousVersion("ds-0001", frozenset(old["sample_id"]))

    # when the whole version is validated
    result = validate_manifest(df, PARAMS, GENERATORS, None, previous=previous)

    # then it fails on the version's share (10 of 12), the advice quoting both shares and the setting
    (failure,) = result.batch_failures
    assert failure.name == BALANCE
    assert "0.833 (10 of 12)" in failure.advice and "new rows' share is 1.000 (8 of 8)" in failure.advice
    assert "ds-0001" in failure.advice and "validation.max_fake_fraction" in failure.advice
    assert "label: real" in failure.advice
    assert any("whole version" in note for note in result.notes)


def test_a_first_version_that_is_all_fake_is_refused_saying_add_reals():
    # given the first batch ever, all fakes of one generator
    result = validate_manifest(_table(["fake"] * 4), PARAMS, GENERATORS, None)
    # then it is refused: add real clips, or change validation.max_fake_fraction
    (failure,) = result.batch_failures
    assert failure.name == BALANCE and "first version would be all fake" in failure.advice
    assert "label: real" in failure.advice and "validation.max_fake_fraction" in failure.advice


@pytest.mark.parametrize("suite_name", [SUITE_NAME, ANNOTATION_SUITE_NAME])
def test_an_expectation_outside_the_table_is_an_error(suite_name):
    # given a name no suite has; when looked up; then it fails loudly, naming the table
    with pytest.raises(KeyError, match="SETTINGS"):
        setting_for(suite_name, "expect_column_kl_divergence_to_be_less_than(fps)")
