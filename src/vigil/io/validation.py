"""Great Expectations suite for a manifest table (GX validates tables, not media: DESIGN.md).

One call, :func:`validate_manifest`, builds an ephemeral GX context, checks the manifest
DataFrame against the suite below, renders Data Docs into a folder the caller chooses (the
context's default ``local_site`` points at a throw-away temp dir) and returns a small frozen
:class:`ValidationResult` that flows, the CLI and the lineage ledger can keep without GX objects.

Every expectation has a **scope** (kept in its GX ``meta``), which says what a failure condemns:

* **row** expectations judge one clip at a time. GX runs with ``result_format="COMPLETE"`` and
  ``unexpected_index_column_names=["sample_id"]``, so a failure names each offending row's
  ``sample_id`` and value (:attr:`ExpectationOutcome.rows`). The caller (ingest) quarantines those
  clips and validates the rest again: one bad clip never rejects a batch. Row expectations:

  - schema per value: every value has its column's type (value by value for object columns) and
    required columns are never null;
  - identity: ``sample_id`` is 64 lower-case hex characters;
  - vocabularies: ``label`` in real/fake/unknown, ``split`` in train/val/test, ``generator`` in the
    allowed set (``real`` and ``unknown`` are always allowed; ingest adds every generator a source
    names in ``crawl.sources[*].generator``);
  - a known label: ``label`` is not ``unknown``. A clip whose source claims no label has nothing to
    train or annotate on (annotate and train skip it), so it is quarantined naming its source and
    ``crawl.sources[<name>].label`` instead of riding along in the version unseen;
  - media facts: duration in (0, max_duration_s], fps in [min_fps, max_fps], width and height in
    [min_side, max_side], ``n_frames`` and ``frame_count`` at least 1.

* **batch** expectations judge the table as a whole; a failure rejects the batch, and its
  :attr:`ExpectationOutcome.advice` names the ``params.yaml`` setting to change (or says that no
  setting fixes it, for a defect of the pipeline itself):

  - size: at least ``min_rows`` rows;
  - class balance: the share of fakes among rows labelled real/fake lies in
    [min_fake_fraction, max_fake_fraction]. GX has no such expectation, so a derived ``_is_fake``
    column (1 fake, 0 real, null unlabelled) is checked with ``ExpectColumnMeanToBeBetween``; a
    manifest with no labelled row fails it. Balance is a property of the **version**, not of what
    one crawl brought: ingest rebuilds the manifest from every crawl record in the store, so the
    table judged is the whole version that would be published (the previous version's rows that
    are still in, plus the new ones) and a source that is all fake passes when older reals balance
    it. The advice gives both shares, the version's and the new rows' (:class:`PreviousVersion`);
  - structure: every manifest column exists (a missing column cannot be blamed on a row), and a
    typed column's dtype is right (GX checks a typed column's dtype once, not per value);
  - uniqueness of ``sample_id``: ingest keys rows by content hash, so a repeat is a defect of the
    manifest builder, not of either clip; dropping both copies would hide the bug;
  - split hygiene: every row's pair / near-duplicate group sits in one split (derived column
    ``_group_in_one_split``). Splits are assigned per group by ingest, so a leak between train and
    test is a defect of split assignment; quarantining the rows would hide it, so it rejects.

Every expectation of both suites (manifest and annotations) has an entry in :data:`SETTINGS`, the
one table of expectation → the ``params.yaml`` setting a user changes when it fails; advice and
quarantine records quote it (a test keeps the table complete).

A row expectation that fails on **every** row of a batch of more than one row is treated as a
batch failure (:attr:`ExpectationOutcome.systemic`): that is a pipeline or params problem (a
wrong bound, a changed column), and quarantining the whole dataset clip by clip would bury it.

GX is slow to import (about 5 s cold); it is imported lazily so that importing this module costs
nothing until a validation actually runs.
"""

from __future__ import annotations

import logging
import os
import re
import time
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from vigil.config.params import ValidationParams
from vigil.core.annotation import LABEL_ONLY_KIND, AnnotationKind
from vigil.core.sample import LABELS, MANIFEST_SCHEMA, SPLITS

log = logging.getLogger(__name__)

SUITE_NAME = "vigil_manifest"
ANNOTATION_SUITE_NAME = "vigil_annotations"
DOCS_SITE_NAME = "vigil_docs"

IS_FAKE_COLUMN = "_is_fake"
GROUP_IN_ONE_SPLIT_COLUMN = "_group_in_one_split"
INDEX_COLUMN = "sample_id"  # how a failed row is named in results
FAKE_EVIDENCE_COLUMN = "_fake_evidence"
LABEL_ONLY = LABEL_ONLY_KIND  # an annotation kind: a verdict with no grounded evidence (sources without artifacts)
ANNOTATION_KINDS: tuple[str, ...] = typing.get_args(AnnotationKind)
NO_SETTING = "no params.yaml setting"  # a pipeline defect (or the clip's own): report it / the clip stays out
SOURCE_PLACEHOLDER = "<name>"  # in a setting path, the crawl source a row came from

LABEL_IN_SET = "expect_column_values_to_be_in_set(label)"
LABEL_KNOWN = "expect_column_values_to_not_be_in_set(label)"
GENERATOR_IN_SET = "expect_column_values_to_be_in_set(generator)"
BALANCE = f"expect_column_mean_to_be_between({IS_FAKE_COLUMN})"

#: The one table of expectation → the ``params.yaml`` setting a user changes when it fails, per
#: suite. ``type(*)`` stands for that expectation on any column. :data:`NO_SETTING` marks a check
#: no setting relaxes: a defect of the pipeline (report it) or of the clip itself (it stays out).
#: tests/io/test_validation.py checks that every expectation of both suites has an entry.
SETTINGS: Mapping[str, Mapping[str, str]] = {
    SUITE_NAME: {
        "expect_table_row_count_to_be_between": "validation.min_rows",
        "expect_column_to_exist(*)": NO_SETTING,
        "expect_column_values_to_be_in_type_list(*)": NO_SETTING,
        "expect_column_values_to_not_be_null(*)": NO_SETTING,
        "expect_column_values_to_be_unique(sample_id)": NO_SETTING,
        "expect_column_values_to_match_regex(sample_id)": NO_SETTING,
        LABEL_IN_SET: f"crawl.sources[{SOURCE_PLACEHOLDER}].label",
        LABEL_KNOWN: f"crawl.sources[{SOURCE_PLACEHOLDER}].label",
        "expect_column_values_to_be_in_set(split)": NO_SETTING,
        GENERATOR_IN_SET: "validation.allowed_generators",
        "expect_column_values_to_be_between(duration_s)": "validation.max_duration_s",
        "expect_column_values_to_be_between(fps)": "validation.min_fps, validation.max_fps",
        "expect_column_values_to_be_between(width)": "validation.min_side, validation.max_side",
        "expect_column_values_to_be_between(height)": "validation.min_side, validation.max_side",
        "expect_column_values_to_be_between(n_frames)": NO_SETTING,
        "expect_column_values_to_be_between(frame_count)": NO_SETTING,
        BALANCE: "validation.min_fake_fraction, validation.max_fake_fraction",
        f"expect_column_values_to_be_in_set({GROUP_IN_ONE_SPLIT_COLUMN})": NO_SETTING,
    },
    ANNOTATION_SUITE_NAME: {
        "expect_table_row_count_to_be_between": NO_SETTING,
        "expect_column_values_to_be_unique(sample_id)": NO_SETTING,
        "expect_column_values_to_not_be_null(annotation_id)": "annotate.min_coverage",
        "expect_column_values_to_be_in_set(kind)": NO_SETTING,
        "expect_column_values_to_be_in_set(annotation_label)": NO_SETTING,
        "expect_column_mean_to_be_between(_compliant)": "annotate.min_compliance_rate",
        f"expect_column_mean_to_be_between({FAKE_EVIDENCE_COLUMN})": "annotate.min_evidence_per_fake",
        f"expect_column_values_to_be_null({FAKE_EVIDENCE_COLUMN})": "annotate.min_evidence_per_fake",
        "expect_column_mean_to_be_between(_label_agrees)": "annotate.min_label_agreement",
    },
}


def setting_for(suite: str, name: str) -> str:
    """The ``params.yaml`` setting behind expectation ``name`` of ``suite`` (:data:`SETTINGS`).

    >>> setting_for(SUITE_NAME, "expect_column_values_to_be_between(fps)")
    'validation.min_fps, validation.max_fps'
    >>> setting_for(SUITE_NAME, "expect_column_to_exist(phash)") == NO_SETTING
    True
    """
    table = SETTINGS[suite]
    if name in table:
        return table[name]
    wildcard = f"{name.split('(')[0]}(*)"
    if wildcard in table:
        return table[wildcard]
    raise KeyError(f"expectation {name} of suite {suite} has no entry in vigil.io.validation.SETTINGS")

#: dtype names a pandas column of each Arrow type may have after read_manifest (or when built by
#: hand). GX compares a typed column's dtype (numpy names, pandas extension dtype class names) and
#: checks an object column value by value against Python type names ('str', 'list').
_TYPE_NAMES: dict[str, list[str]] = {
    "string": ["str", "StringDtype"],
    "int": ["int64", "int32", "Int64Dtype", "Int32Dtype"],
    "float": ["float64", "float32", "Float64Dtype"],
    "bool": ["bool", "BooleanDtype"],
    # GX 1.24 cannot match a tz-aware dtype by name, so the validated copy holds naive UTC times
    "timestamp": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]"],
    "list": ["list"],
}


ROW, BATCH = "row", "batch"


@dataclass(frozen=True)
class RowProblem:
    """One row an expectation refused: which sample, and the value it has."""

    sample_id: str
    value: Any
    source: str | None = None  # the crawl source the row came from, when the table says
    hint: str = ""  # the cause and the setting to change, for this row (see row_hint)


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, readable without GX."""

    name: str  # e.g. "expect_column_values_to_be_in_set(label)"
    success: bool
    observed: Any  # observed value, or a sample of unexpected values
    details: Mapping[str, Any] = field(default_factory=dict)
    scope: str = BATCH  # ROW: a failure condemns the rows it names; BATCH: the whole table
    column: str | None = None
    bound: str = ""  # what a value must be, naming the params setting, e.g. "in [1.0, 240.0] (validation.min_fps…)"
    rows: tuple[RowProblem, ...] = ()  # failed rows (row scope, when GX could name them)
    n_rows: int = 0  # rows in the validated table
    advice: str = ""  # for a failure: what is wrong and what to change

    @property
    def systemic(self) -> bool:
        """A row expectation failing on every row of a batch of several: a pipeline or params problem."""
        return self.scope == ROW and self.n_rows > 1 and len({r.sample_id for r in self.rows}) >= self.n_rows

    @property
    def rejects_rows(self) -> bool:
        """A failure whose rows can be quarantined one by one, leaving the batch to be judged again."""
        return not self.success and self.scope == ROW and bool(self.rows) and not self.systemic


@dataclass(frozen=True)
class RowRejection:
    """Why one row was refused: the expectation, the column, the value and the bound it missed."""

    sample_id: str
    expectation: str
    column: str | None
    value: Any
    bound: str
    source: str | None = None
    hint: str = ""

    def describe(self) -> str:
        text = f"{self.column or 'row'} = {self.value!r}, must be {self.bound}" if self.bound else \
            f"{self.column or 'row'} = {self.value!r}"
        return f"{text}: {self.hint}" if self.hint else text


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_manifest` found."""

    success: bool
    expectations: tuple[ExpectationOutcome, ...]
    docs_index: Path | None
    statistics: Mapping[str, Any]
    elapsed_s: float
    notes: tuple[str, ...] = ()  # facts a reader needs besides the verdicts (class balance, evidence counts)

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if not e.success)

    @property
    def batch_failures(self) -> tuple[ExpectationOutcome, ...]:
        """Failures that judge the batch as a whole (including row failures no row can be blamed for)."""
        return tuple(e for e in self.failures if not e.rejects_rows)

    def failed_names(self) -> list[str]:
        return [e.name for e in self.failures]

    def rejected_rows(self) -> dict[str, list[RowRejection]]:
        """sample_id → every row expectation it failed (empty when no row can be blamed on its own)."""
        out: dict[str, list[RowRejection]] = {}
        for e in self.failures:
            if e.rejects_rows:
                for row in e.rows:
                    out.setdefault(row.sample_id, []).append(
                        RowRejection(row.sample_id, e.name, e.column, row.value, e.bound, row.source, row.hint))
        return out

    def summary(self) -> str:
        """A few lines for logs and flow run notes: each batch failure with its advice, each row failure
        with the samples it names."""
        head = (f"validation {'passed' if self.success else 'FAILED'}: "
                f"{self.statistics.get('successful_expectations')}/{self.statistics.get('evaluated_expectations')} "
                f"expectations in {self.elapsed_s:.2f}s")
        lines = [head, *(f"  {note}" for note in self.notes)]
        for e in self.failures:
            if e.rejects_rows:
                shown = ", ".join(f"{r.sample_id[:12]} = {r.value!r}" for r in e.rows[:5])
                more = f" and {len(e.rows) - 5} more" if len(e.rows) > 5 else ""
                hints = sorted({r.hint for r in e.rows if r.hint})
                why = f"; {hints[0]}" + (f" (and {len(hints) - 1} more like it)" if len(hints) > 1 else "") \
                    if hints else ""
                lines.append(f"  ✗ {e.name}: {len(e.rows)} rows ({shown}{more}) must be {e.bound}{why}")
            else:
                lines.append(f"  ✗ {e.name}: {e.advice or f'observed {e.observed!r}'}")
        if self.docs_index:
            lines.append(f"  docs: {self.docs_index}")
        return "\n".join(lines)


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_list(arrow_type):
        return "list"
    raise TypeError(f"no GX type mapping for {arrow_type}")


def expectation_name(config: Any) -> str:
    """Stable, human name of an expectation: its type and, if any, its column."""
    column = config.kwargs.get("column")
    return f"{config.type}({column})" if column else config.type


def _interval(low: float | None, high: float | None, low_setting: str | None, high_setting: str | None, *,
              strict_low: bool = False) -> str:
    """A bound for people, naming the settings that set it: ``in [1.0, 240.0] (validation.min_fps, …)``."""
    left = f"{'(' if strict_low else '['}{low if low is not None else '-inf'}"
    right = f"{high if high is not None else 'inf'}{']' if high is not None else ')'}"
    settings = ", ".join(f"validation.{s}" for s in (low_setting, high_setting) if s)
    return f"in {left}, {right}" + (f" ({settings} in params.yaml)" if settings else "")


def build_suite(params: ValidationParams, allowed_generators: Iterable[str]):
    """The manifest :class:`great_expectations.ExpectationSuite` (not yet added to a context).

    Each expectation's ``meta`` holds its scope (``row`` or ``batch``) and, for row ones, the bound
    a value must meet (quarantine records and reports quote it)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    generators = sorted(set(allowed_generators) | {"real", "unknown"})
    expectations: list = []
    add = expectations.append  # suite.add_expectation compares each new one with all before: O(n²)

    def row(expectation_type, bound: str, **kwargs) -> None:
        add(expectation_type(**kwargs, meta={"scope": ROW, "bound": bound}))

    def batch(expectation_type, **kwargs) -> None:
        add(expectation_type(**kwargs, meta={"scope": BATCH}))

    batch(gxe.ExpectTableRowCountToBeBetween, min_value=params.min_rows)
    for f in MANIFEST_SCHEMA:
        batch(gxe.ExpectColumnToExist, column=f.name)
        type_names = _TYPE_NAMES[_kind(f.type)]
        row(gxe.ExpectColumnValuesToBeInTypeList, f"of type {' or '.join(type_names)} (vigil.core.sample schema)",
            column=f.name, type_list=type_names)
        if not f.nullable:
            row(gxe.ExpectColumnValuesToNotBeNull, "present (a required manifest column)", column=f.name)

    batch(gxe.ExpectColumnValuesToBeUnique, column="sample_id")
    row(gxe.ExpectColumnValuesToMatchRegex, "64 lower-case hex characters (a sha256)",
        column="sample_id", regex=r"^[0-9a-f]{64}$")
    row(gxe.ExpectColumnValuesToBeInSet, f"one of {', '.join(LABELS)} (crawl.sources[{SOURCE_PLACEHOLDER}].label "
        "in params.yaml)", column="label", value_set=list(LABELS))
    row(gxe.ExpectColumnValuesToNotBeInSet, "real or fake", column="label", value_set=["unknown"])  # hint: the source
    row(gxe.ExpectColumnValuesToBeInSet, f"one of {', '.join(SPLITS)}", column="split", value_set=list(SPLITS))
    row(gxe.ExpectColumnValuesToBeInSet, f"one of {', '.join(generators)} (validation.allowed_generators in "
        "params.yaml; a generator named in crawl.sources[*].generator is allowed too)",
        column="generator", value_set=generators)

    row(gxe.ExpectColumnValuesToBeBetween, _interval(0, params.max_duration_s, None, "max_duration_s", strict_low=True),
        column="duration_s", min_value=0, strict_min=True, max_value=params.max_duration_s)
    row(gxe.ExpectColumnValuesToBeBetween, _interval(params.min_fps, params.max_fps, "min_fps", "max_fps"),
        column="fps", min_value=params.min_fps, max_value=params.max_fps)
    for side in ("width", "height"):
        row(gxe.ExpectColumnValuesToBeBetween, _interval(params.min_side, params.max_side, "min_side", "max_side"),
            column=side, min_value=params.min_side, max_value=params.max_side)
    row(gxe.ExpectColumnValuesToBeBetween, "at least 1 (a clip with no sampled frame)", column="n_frames", min_value=1)
    row(gxe.ExpectColumnValuesToBeBetween, "at least 1 (a clip with no frame)", column="frame_count", min_value=1)

    batch(gxe.ExpectColumnMeanToBeBetween, column=IS_FAKE_COLUMN, min_value=params.min_fake_fraction,
          max_value=params.max_fake_fraction)
    batch(gxe.ExpectColumnValuesToBeInSet, column=GROUP_IN_ONE_SPLIT_COLUMN, value_set=[True])
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


@dataclass(frozen=True)
class SourceClaims:
    """What ``params.yaml`` says about one crawl source, as far as validation advice needs it."""

    name: str
    label: str | None = None
    generator: str | None = None
    generator_from_path: bool = False  # generators are derived from URL paths, not known in advance


def source_claims(sources: Iterable[Any]) -> dict[str, SourceClaims]:
    """Source name → its claims, from ``crawl.sources`` entries. Read with ``getattr``: a setting a
    source does not have reads as unset (older params files, or a field not added yet)."""
    out: dict[str, SourceClaims] = {}
    for source in sources:
        name = str(getattr(source, "name", ""))
        label, generator = getattr(source, "label", None), getattr(source, "generator", None)
        out[name] = SourceClaims(name, str(label) if label else None, str(generator) if generator else None,
                                 bool(getattr(source, "generator_from_path", None)))
    return out


@dataclass(frozen=True)
class PreviousVersion:
    """The dataset version the validated table would follow: its tag and sample ids, so the
    class-balance advice can tell the whole version's share from the new rows' share."""

    tag: str
    sample_ids: frozenset[str]


@dataclass(frozen=True)
class LabelCounts:
    """Fakes and reals among labelled rows.

    >>> LabelCounts(3, 1).share, LabelCounts(0, 0).share is None
    (0.75, True)
    """

    fakes: int
    reals: int

    @property
    def labelled(self) -> int:
        return self.fakes + self.reals

    @property
    def share(self) -> float | None:
        return self.fakes / self.labelled if self.labelled else None

    def describe(self) -> str:
        return f"{self.share:.3f} ({self.fakes} of {self.labelled})" if self.labelled else "none labelled"


@dataclass(frozen=True)
class ManifestFacts:
    """What the advice needs to know about the validated table beyond one expectation's result."""

    version: LabelCounts = LabelCounts(0, 0)  # the whole table: the version that would be published
    new: LabelCounts = LabelCounts(0, 0)  # rows not in the previous version (all rows for a first version)
    previous_tag: str | None = None
    sources: Mapping[str, SourceClaims] = field(default_factory=dict)


def _counts(labels: pd.Series) -> LabelCounts:
    return LabelCounts(int((labels == "fake").sum()), int((labels == "real").sum()))


def manifest_facts(df: pd.DataFrame, previous: PreviousVersion | None, sources: Iterable[Any] = ()) -> ManifestFacts:
    """Label counts of the whole table and of its new rows, and the sources' claims."""
    labels = df["label"] if "label" in df else pd.Series([], dtype=object)
    new = labels
    if previous is not None and "sample_id" in df:
        new = labels[~df["sample_id"].isin(previous.sample_ids)]
    return ManifestFacts(_counts(labels), _counts(new), previous.tag if previous else None, source_claims(sources))


def row_hint(name: str, value: Any, source: str | None, claims: Mapping[str, SourceClaims]) -> str:
    """The cause of one refused row and the setting to change, where the row's source decides it.

    >>> row_hint(LABEL_KNOWN, "unknown", "rss-a", {})
    'source rss-a claims no label: set crawl.sources[rss-a].label to real or fake in params.yaml'
    """
    where = source or SOURCE_PLACEHOLDER
    if name == LABEL_KNOWN:
        return f"source {where} claims no label: set crawl.sources[{where}].label to real or fake in params.yaml"
    if name == GENERATOR_IN_SET:
        claim = claims.get(source or "")
        if claim is not None and claim.generator_from_path:
            return (f"crawl.sources[{where}].generator_from_path derived {value!r} from a URL path, so it is not "
                    "known in advance: list it in validation.allowed_generators in params.yaml")
        return (f"list {value!r} in validation.allowed_generators in params.yaml, or name it in "
                f"crawl.sources[{where}].generator (a generator a source names is allowed)")
    return ""


def _name_setting(text: str, setting: str) -> str:
    """``text``, ending with the setting to change unless it names it already."""
    if setting == NO_SETTING:
        return text if "no params" in text else f"{text}; no params.yaml setting fixes it"

    def named(part: str) -> bool:  # crawl.sources[<name>].label is named by crawl.sources[rss-a].label too
        head, _, tail = part.partition(SOURCE_PLACEHOLDER)
        pattern = re.escape(head) + r"[^\]]+" + re.escape(tail)
        return part in text or (bool(tail) and re.search(pattern, text) is not None)

    missing = [part for part in setting.split(", ") if not named(part)]
    return f"{text}; setting: {', '.join(missing)} in params.yaml" if missing else text


def _grouped(rows: Sequence[RowProblem]) -> str:
    """``'sora-2' ×3 (source rss-a), 'kling-v1' (source rss-b)``: the refused values and where from."""
    groups: dict[tuple[str, str | None], int] = {}
    for r in rows:
        key = (repr(r.value), r.source)
        groups[key] = groups.get(key, 0) + 1
    shown = [f"{value}{f' ×{n}' if n > 1 else ''}{f' (source {src})' if src else ''}"
             for (value, src), n in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0][0]))[:5]]
    return ", ".join(shown) + (f" and {len(groups) - 5} more" if len(groups) > 5 else "")


def _balance_advice(observed: Any, params: ValidationParams, facts: ManifestFacts) -> str:
    bounds = (f"[validation.min_fake_fraction = {params.min_fake_fraction}, "
              f"validation.max_fake_fraction = {params.max_fake_fraction}]")
    version, new = facts.version, facts.new
    if not isinstance(observed, (int, float)) or observed != observed:  # None or NaN: nothing labelled
        return (f"no row is labelled real or fake, so the share of fakes cannot be judged against {bounds}: set "
                f"crawl.sources[{SOURCE_PLACEHOLDER}].label (real or fake) for the sources that claim none")
    too_fake = observed > params.max_fake_fraction
    setting = "validation.max_fake_fraction" if too_fake else "validation.min_fake_fraction"
    rarer = "real clips (a source with `label: real` in crawl.sources)" if too_fake else \
        "fake clips (a source with `label: fake` in crawl.sources)"
    if facts.previous_tag is None and version.labelled and observed in (0.0, 1.0):
        kind = "fake" if too_fake else "real"
        return (f"the first version would be all {kind} ({version.labelled} labelled rows), outside {bounds}: add "
                f"{rarer} or change {setting} in params.yaml")
    this = f"{version.describe()} of labelled rows" if version.labelled else f"{observed:.3f}"
    since = f"{facts.previous_tag}'s rows still in plus the new ones" if facts.previous_tag else "a first version"
    return (f"the version that would be published ({since}) has a fake share of {this}, outside {bounds}; the "
            f"new rows' share is {new.describe()}: add {rarer} or change {setting} in params.yaml")


def batch_advice(outcome: ExpectationOutcome, params: ValidationParams, facts: ManifestFacts | None = None) -> str:
    """What a failed batch-level expectation means and which ``params.yaml`` setting changes it
    (every message names its :data:`SETTINGS` entry, or says that no setting fixes it)."""
    facts = facts or ManifestFacts()
    return _name_setting(_batch_text(outcome, params, facts), setting_for(SUITE_NAME, outcome.name))


def _batch_text(outcome: ExpectationOutcome, params: ValidationParams, facts: ManifestFacts) -> str:
    name, observed, column = outcome.name, outcome.observed, outcome.column
    examples = ", ".join(r.sample_id[:12] for r in outcome.rows[:3])
    if name == "expect_table_row_count_to_be_between":
        return (f"validation.min_rows = {params.min_rows} but the batch has {outcome.n_rows} rows: crawl more or "
                "lower validation.min_rows in params.yaml")
    if name == BALANCE:
        return _balance_advice(observed, params, facts)
    if name == f"expect_column_values_to_be_in_set({GROUP_IN_ONE_SPLIT_COLUMN})":
        return (f"{len(outcome.rows) or 'some'} rows share a pair or near-duplicate group with rows in another split"
                f"{f' (e.g. {examples})' if examples else ''}: ingest assigns splits per group, so this is a bug in "
                "split assignment, not bad data; no params setting fixes it (report it)")
    if name == "expect_column_values_to_be_unique(sample_id)":
        return (f"sample_id repeats{f' (e.g. {examples})' if examples else ''}: ingest keys rows by content hash, so "
                "this is a bug in the manifest builder; no params setting fixes it (report it)")
    if name.startswith("expect_column_to_exist"):
        return (f"column {column} is missing: the manifest must follow vigil.core.sample.MANIFEST_SCHEMA (a pipeline "
                "defect; no params setting fixes it)")
    if name == LABEL_KNOWN and outcome.rows:
        sources = sorted({r.source or SOURCE_PLACEHOLDER for r in outcome.rows})
        return (f"every one of the {outcome.n_rows} rows has label 'unknown': its source claims no label "
                f"({', '.join(sources[:5])}); set " + ", ".join(f"crawl.sources[{s}].label" for s in sources[:5])
                + " to real or fake in params.yaml")
    if name == GENERATOR_IN_SET and outcome.rows:
        from_path = sorted({r.source for r in outcome.rows if r.source and facts.sources.get(r.source)
                            and facts.sources[r.source].generator_from_path})
        derived = (f" (derived from URL paths by crawl.sources[{from_path[0]}].generator_from_path, so not known "
                   "in advance)") if from_path else ""
        return (f"every one of the {outcome.n_rows} rows claims a generator outside the allowed set: "
                f"{_grouped(outcome.rows)}{derived}; list them in validation.allowed_generators in params.yaml"
                + ("" if from_path else " or name each source's generator in crawl.sources[<name>].generator"))
    if outcome.systemic:
        return (f"every one of the {outcome.n_rows} rows fails it (must be {outcome.bound}): a params or pipeline "
                "problem, not bad clips; check the bound in params.yaml")
    if outcome.scope == ROW:
        return f"observed {observed!r}; values must be {outcome.bound} (GX named no row, so the batch is judged)"
    return f"observed {observed!r}"


def with_derived_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with the columns the balance and split-hygiene expectations read, and
    UTC timestamps made naive (GX's type check cannot name a tz-aware dtype)."""
    out = df.copy()
    for f in MANIFEST_SCHEMA:
        if pa.types.is_timestamp(f.type) and f.name in out and isinstance(out[f.name].dtype, pd.DatetimeTZDtype):
            out[f.name] = out[f.name].dt.tz_convert("UTC").dt.tz_localize(None)
    if "label" in out:
        out[IS_FAKE_COLUMN] = out["label"].map({"fake": 1.0, "real": 0.0}).astype("float64")
    else:
        out[IS_FAKE_COLUMN] = float("nan")
    ok = pd.Series(True, index=out.index)
    if "split" in out:
        for column in ("pair_id", "near_duplicate_group"):
            if column in out:
                keys = out[column].where(out[column].notna() & (out[column].astype(str) != ""))
                n_splits = out.assign(_k=keys).groupby("_k")["split"].transform("nunique")
                ok &= ~(keys.notna() & (n_splits > 1))
    out[GROUP_IN_ONE_SPLIT_COLUMN] = ok.astype(bool)
    return out


def _observed(result: Mapping[str, Any]) -> Any:
    if "observed_value" in result:
        value = result["observed_value"]
        return value.item() if hasattr(value, "item") else value
    if "unexpected_count" in result:
        return {"unexpected_count": result.get("unexpected_count"),
                "unexpected_sample": list(result.get("partial_unexpected_list") or [])[:10]}
    return None


def _failed_rows(result: Mapping[str, Any], column: str | None) -> tuple[RowProblem, ...]:
    """The rows GX named as unexpected (``unexpected_index_list`` holds {sample_id, column} dicts)."""
    rows = []
    for entry in result.get("unexpected_index_list") or ():
        if isinstance(entry, Mapping) and entry.get(INDEX_COLUMN) is not None:
            rows.append(RowProblem(str(entry[INDEX_COLUMN]), _plain(entry.get(column)) if column else None))
    return tuple(rows)


def _plain(value: Any) -> Any:
    """JSON-friendly copy of a GX result dict (numpy scalars → Python)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return str(value)
    return value


def _remove_default_site_dir(context: Any) -> None:
    """An ephemeral context makes a temp dir for its default ``local_site`` on every start; remove
    it so that repeated validations in a long-lived worker do not litter the temp folder."""
    import shutil
    import tempfile

    tmp_root = Path(tempfile.gettempdir()).resolve()
    for name, site in (context.get_config().data_docs_sites or {}).items():
        if name == DOCS_SITE_NAME:
            continue
        base = Path(str(site.get("store_backend", {}).get("base_directory", ""))).resolve()
        if base.parent == tmp_root and base.name.startswith("tmp"):
            shutil.rmtree(base, ignore_errors=True)


def validate_manifest(
    df: pd.DataFrame,
    params: ValidationParams,
    allowed_generators: Iterable[str],
    docs_dir: str | Path | None,
    *,
    sources: Iterable[Any] = (),
    previous: PreviousVersion | None = None,
) -> ValidationResult:
    """Validate a manifest table; write Data Docs under ``docs_dir`` (None: no docs).

    ``df`` is the whole version that would be published; ``previous`` (the version it follows, if
    any) only tells the new rows apart for the class-balance advice and note, and ``sources`` (the
    ``crawl.sources`` entries) lets a refused row's advice name its source's setting.

    Never raises for bad data: every problem is a failed expectation in the result, row-level ones
    naming their rows (:meth:`ValidationResult.rejected_rows`) with a hint naming the setting,
    batch-level ones carrying advice that names the setting to change. Raises only when GX itself
    cannot run.
    """
    result = run_suite(with_derived_columns(df), lambda: build_suite(params, allowed_generators),
                       "manifest", docs_dir, n_rows=len(df))
    facts = manifest_facts(df, previous, sources)
    source_of = dict(zip(df["sample_id"], df["source"])) if {"sample_id", "source"} <= set(df.columns) else {}

    def located(e: ExpectationOutcome) -> ExpectationOutcome:
        rows = tuple(replace(r, source=source_of.get(r.sample_id),
                             hint=row_hint(e.name, r.value, source_of.get(r.sample_id), facts.sources))
                     for r in e.rows)
        e = replace(e, rows=rows)
        return replace(e, advice=batch_advice(e, params, facts)) if not e.success and not e.rejects_rows else e

    since = f"{previous.tag}'s rows still in plus {facts.new.labelled} new" if previous else "a first version"
    note = (f"class balance judged on the whole version ({since}): fake share among labelled rows "
            f"{facts.version.describe()}; new rows {facts.new.describe()}")
    return replace(result, expectations=tuple(located(e) for e in result.expectations),
                   notes=(*result.notes, note))


def run_suite(df: pd.DataFrame, make_suite, name: str, docs_dir: str | Path | None, *,
              n_rows: int | None = None) -> ValidationResult:
    """Run the suite ``make_suite()`` builds over ``df`` in an ephemeral GX context; Data Docs
    go under ``docs_dir``. Shared by every table Vigil validates (manifest, annotations)."""
    started = time.perf_counter()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no internet; never try to phone home
    gx_log = logging.getLogger("great_expectations")
    if gx_log.level == logging.NOTSET:  # GX logs every closure it registers at INFO; keep warnings only
        gx_log.setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    imported = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    docs_index: Path | None = None
    if docs_dir is not None:
        docs_dir = Path(docs_dir).absolute()
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(DOCS_SITE_NAME, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })

    asset = context.data_sources.add_pandas(name).add_dataframe_asset(f"{name}_rows")
    batch_definition = asset.add_batch_definition_whole_dataframe(f"whole_{name}")
    suite = context.suites.add(make_suite())
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}_validation", data=batch_definition, suite=suite))
    # COMPLETE + the sample_id index column: a failed row expectation names every row it refused
    result_format: dict[str, Any] = {"result_format": "COMPLETE"}
    if INDEX_COLUMN in df:
        result_format["unexpected_index_column_names"] = [INDEX_COLUMN]
    gx_result = definition.run(batch_parameters={"dataframe": df}, result_format=result_format)
    validated = time.perf_counter()

    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE_NAME])
        docs_index = docs_dir / "index.html"
    _remove_default_site_dir(context)

    outcomes = []
    for r in gx_result.results:
        details = _plain(dict(r.result or {}))
        exc = r.exception_info or {}
        if isinstance(exc, Mapping) and exc.get("raised_exception"):
            details["exception"] = exc.get("exception_message")
        config = r.expectation_config
        meta = dict(config.meta or {})
        outcomes.append(ExpectationOutcome(
            name=expectation_name(config), success=bool(r.success), observed=_plain(_observed(r.result or {})),
            details=details, scope=str(meta.get("scope", BATCH)), column=config.kwargs.get("column"),
            bound=str(meta.get("bound", "")), rows=_failed_rows(r.result or {}, config.kwargs.get("column")),
            n_rows=int(len(df) if n_rows is None else n_rows)))
    order = {expectation_name(e.configuration): i for i, e in enumerate(suite.expectations)}
    outcomes.sort(key=lambda o: order.get(o.name, len(order)))
    finished = time.perf_counter()
    statistics = {**_plain(dict(gx_result.statistics)), "rows": int(len(df) if n_rows is None else n_rows),
                  "import_s": round(imported - started, 3), "validate_s": round(validated - imported, 3),
                  "docs_s": round(finished - validated, 3)}
    result = ValidationResult(success=bool(gx_result.success), expectations=tuple(outcomes),
                              docs_index=docs_index, statistics=statistics, elapsed_s=finished - started)
    log.info("%s validation: %s", name, result.summary())
    return result


def build_annotation_suite(params, *, grounded_fakes: int | None = None):
    """Expectations on a labelled version's annotation table (``vigil.core.annotation``).

    ``grounded_fakes`` is how many annotated fakes carry grounded evidence (kind other than
    ``label_only``). With none (every fake is label-only, or there is no fake), mean evidence per
    fake has nothing to judge: GX fails a mean over no value, so the check becomes "no grounded
    fake carries an evidence count" (true by construction) and passes, and the result's statistics
    say so (``evidence_check``). ``None``: judge it as usual."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    if grounded_fakes == 0:
        evidence = gxe.ExpectColumnValuesToBeNull(
            column=FAKE_EVIDENCE_COLUMN, meta={"note": "no grounded fake: min_evidence_per_fake has nothing to judge"})
    else:
        evidence = gxe.ExpectColumnMeanToBeBetween(column=FAKE_EVIDENCE_COLUMN, min_value=params.min_evidence_per_fake)
    return gx.ExpectationSuite(name=ANNOTATION_SUITE_NAME, expectations=[
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="annotation_id", mostly=params.min_coverage),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(ANNOTATION_KINDS)),
        gxe.ExpectColumnValuesToBeInSet(column="annotation_label", value_set=["real", "fake"]),
        gxe.ExpectColumnMeanToBeBetween(column="_compliant", min_value=params.min_compliance_rate),
        evidence,
        gxe.ExpectColumnMeanToBeBetween(column="_label_agrees", min_value=params.min_label_agreement),
    ])


def annotation_advice(outcome: ExpectationOutcome, params, counts: Mapping[str, int] | None = None) -> str:
    """What a failed annotation expectation means and which ``annotate.*`` setting changes it."""
    counts = counts or {}
    return _name_setting(_annotation_text(outcome, params, counts), setting_for(ANNOTATION_SUITE_NAME, outcome.name))


def _mean(observed: Any) -> str:
    return f"{observed:.3f}" if isinstance(observed, (int, float)) and observed == observed else "nothing"


def _annotation_text(outcome: ExpectationOutcome, params, counts: Mapping[str, int]) -> str:
    name, observed = outcome.name, outcome.observed
    if name == "expect_table_row_count_to_be_between":
        return "the annotation table has no row: the dataset version has no sample (run `vigil ingest` first)"
    if name == "expect_column_values_to_be_unique(sample_id)":
        return "a sample has two rows in the annotation table: a bug in the annotate job; no params setting fixes it"
    if name == "expect_column_values_to_not_be_null(annotation_id)":
        missing = outcome.details.get("unexpected_percent")
        share = f"{1 - float(missing) / 100:.3f}" if isinstance(missing, (int, float)) else "too few"
        return (f"{share} of the samples have an annotation, below annotate.min_coverage = {params.min_coverage}: "
                "annotate the rest (`vigil annotate`) or lower annotate.min_coverage in params.yaml")
    if name == "expect_column_values_to_be_in_set(kind)":
        return (f"annotation kinds {observed!r} are none of {', '.join(ANNOTATION_KINDS)}: a record written by "
                "something validation does not know; no params setting fixes it (report it)")
    if name == "expect_column_values_to_be_in_set(annotation_label)":
        return f"annotation labels {observed!r} are not real/fake: a bug in the annotator; no params setting fixes it"
    if name == "expect_column_mean_to_be_between(_compliant)":
        return (f"{_mean(observed)} of the chosen annotations follow the grammar, below annotate.min_compliance_rate "
                f"= {params.min_compliance_rate}: raise annotate.max_repairs, or lower annotate.min_compliance_rate "
                "in params.yaml")
    if name.endswith(f"({FAKE_EVIDENCE_COLUMN})"):
        return (f"grounded fakes carry {_mean(observed)} typed evidence on average, below "
                f"annotate.min_evidence_per_fake = {params.min_evidence_per_fake} (judged on "
                f"{counts.get('grounded_fakes', '?')} grounded fakes; {counts.get('label_only_fakes', 0)} label-only "
                "fakes are not counted): lower annotate.min_evidence_per_fake in params.yaml or re-annotate")
    if name == "expect_column_mean_to_be_between(_label_agrees)":
        return (f"{_mean(observed)} of the annotations agree with the dataset's label, below "
                f"annotate.min_label_agreement = {params.min_label_agreement}: check the labels (`vigil data exclude` "
                "a mislabelled clip) or lower annotate.min_label_agreement in params.yaml")
    return f"observed {observed!r}"


def annotation_counts(df: pd.DataFrame) -> dict[str, int]:
    """Annotated fakes with grounded evidence and label-only ones (``kind == "label_only"``)."""
    annotated = df["annotation_id"].notna()
    fake = annotated & (df["label"] == "fake")
    label_only = df["kind"] == LABEL_ONLY if "kind" in df else pd.Series(False, index=df.index)
    return {"grounded_fakes": int((fake & ~label_only).sum()), "label_only_fakes": int((fake & label_only).sum())}


def validate_annotations(df: pd.DataFrame, params, docs_dir: str | Path | None) -> ValidationResult:
    """Validate an annotation table: coverage, grammar compliance rate, evidence per fake and
    agreement with the dataset's labels (bounds from ``params``: vigil.config.params.AnnotateParams,
    the ``annotate`` section of params.yaml).

    Evidence per fake is judged on **grounded** fakes only: a ``label_only`` annotation (a verdict
    for a clip from a source that carries no artifacts) has no evidence by design, and counting it
    would fail every version that holds such clips. The statistics and summary report both counts
    (``grounded_fakes``, ``label_only_fakes``); with no grounded fake the check passes with nothing
    to judge (``evidence_check``, see :func:`build_annotation_suite`). Each failure's advice names
    the ``annotate.*`` setting to change."""
    derived = df.copy()
    annotated = derived["annotation_id"].notna()
    counts = annotation_counts(derived)
    grounded = annotated & (derived["label"] == "fake") & (derived["kind"] != LABEL_ONLY)
    derived["_compliant"] = derived["compliant"].where(annotated).astype("float64")
    derived["_label_agrees"] = derived["label_agrees"].where(annotated).astype("float64")
    derived[FAKE_EVIDENCE_COLUMN] = derived["n_evidence"].where(grounded).astype("float64")
    result = run_suite(derived, lambda: build_annotation_suite(params, grounded_fakes=counts["grounded_fakes"]),
                       "annotations", docs_dir, n_rows=len(df))
    evidence_check = (f"judged on {counts['grounded_fakes']} grounded fakes" if counts["grounded_fakes"] else
                      "nothing to judge: no fake has grounded evidence"
                      + (" (every fake is label-only)" if counts["label_only_fakes"] else "") + "; passed")
    advised = tuple(replace(e, advice=annotation_advice(e, params, counts)) if not e.success else e
                    for e in result.expectations)
    note = (f"fakes: {counts['grounded_fakes']} grounded, {counts['label_only_fakes']} label-only; evidence per "
            f"fake {evidence_check}")
    return replace(result, expectations=advised, notes=(*result.notes, note),
                   statistics={**result.statistics, **counts, "evidence_check": evidence_check})
