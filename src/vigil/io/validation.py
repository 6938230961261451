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
    allowed set (``real`` and ``unknown`` are always allowed);
  - media facts: duration in (0, max_duration_s], fps in [min_fps, max_fps], width and height in
    [min_side, max_side], ``n_frames`` and ``frame_count`` at least 1.

* **batch** expectations judge the table as a whole; a failure rejects the batch, and its
  :attr:`ExpectationOutcome.advice` names the ``params.yaml`` setting to change (or says that no
  setting fixes it, for a defect of the pipeline itself):

  - size: at least ``min_rows`` rows;
  - class balance: the share of fakes among rows labelled real/fake lies in
    [min_fake_fraction, max_fake_fraction]. GX has no such expectation, so a derived ``_is_fake``
    column (1 fake, 0 real, null unlabelled) is checked with ``ExpectColumnMeanToBeBetween``; a
    manifest with no labelled row fails it;
  - structure: every manifest column exists (a missing column cannot be blamed on a row), and a
    typed column's dtype is right (GX checks a typed column's dtype once, not per value);
  - uniqueness of ``sample_id``: ingest keys rows by content hash, so a repeat is a defect of the
    manifest builder, not of either clip; dropping both copies would hide the bug;
  - split hygiene: every row's pair / near-duplicate group sits in one split (derived column
    ``_group_in_one_split``). Splits are assigned per group by ingest, so a leak between train and
    test is a defect of split assignment; quarantining the rows would hide it, so it rejects.

A row expectation that fails on **every** row of a batch of more than one row is treated as a
batch failure (:attr:`ExpectationOutcome.systemic`): that is a pipeline or params problem (a
wrong bound, a changed column), and quarantining the whole dataset clip by clip would bury it.

GX is slow to import (about 5 s cold); it is imported lazily so that importing this module costs
nothing until a validation actually runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from vigil.config.params import ValidationParams
from vigil.core.sample import LABELS, MANIFEST_SCHEMA, SPLITS

log = logging.getLogger(__name__)

SUITE_NAME = "vigil_manifest"
DOCS_SITE_NAME = "vigil_docs"

IS_FAKE_COLUMN = "_is_fake"
GROUP_IN_ONE_SPLIT_COLUMN = "_group_in_one_split"
INDEX_COLUMN = "sample_id"  # how a failed row is named in results

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

    def describe(self) -> str:
        return f"{self.column or 'row'} = {self.value!r}, must be {self.bound}" if self.bound else \
            f"{self.column or 'row'} = {self.value!r}"


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_manifest` found."""

    success: bool
    expectations: tuple[ExpectationOutcome, ...]
    docs_index: Path | None
    statistics: Mapping[str, Any]
    elapsed_s: float

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
                        RowRejection(row.sample_id, e.name, e.column, row.value, e.bound))
        return out

    def summary(self) -> str:
        """A few lines for logs and flow run notes: each batch failure with its advice, each row failure
        with the samples it names."""
        head = (f"validation {'passed' if self.success else 'FAILED'}: "
                f"{self.statistics.get('successful_expectations')}/{self.statistics.get('evaluated_expectations')} "
                f"expectations in {self.elapsed_s:.2f}s")
        lines = [head]
        for e in self.failures:
            if e.rejects_rows:
                shown = ", ".join(f"{r.sample_id[:12]} = {r.value!r}" for r in e.rows[:5])
                more = f" and {len(e.rows) - 5} more" if len(e.rows) > 5 else ""
                lines.append(f"  ✗ {e.name}: {len(e.rows)} rows ({shown}{more}) must be {e.bound}")
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
    row(gxe.ExpectColumnValuesToBeInSet, f"one of {', '.join(LABELS)}", column="label", value_set=list(LABELS))
    row(gxe.ExpectColumnValuesToBeInSet, f"one of {', '.join(SPLITS)}", column="split", value_set=list(SPLITS))
    where = "validation.allowed_generators" if params.allowed_generators is not None else \
        "the zoo's generators, real and unknown; set validation.allowed_generators"
    row(gxe.ExpectColumnValuesToBeInSet, f"one of {', '.join(generators)} ({where} in params.yaml)",
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


def batch_advice(outcome: ExpectationOutcome, params: ValidationParams) -> str:
    """What a failed batch-level expectation means and which ``params.yaml`` setting changes it."""
    name, observed, column = outcome.name, outcome.observed, outcome.column
    examples = ", ".join(r.sample_id[:12] for r in outcome.rows[:3])
    if name == "expect_table_row_count_to_be_between":
        return (f"validation.min_rows = {params.min_rows} but the batch has {outcome.n_rows} rows: crawl more or "
                "lower validation.min_rows in params.yaml")
    if name == f"expect_column_mean_to_be_between({IS_FAKE_COLUMN})":
        bounds = (f"[validation.min_fake_fraction = {params.min_fake_fraction}, "
                  f"validation.max_fake_fraction = {params.max_fake_fraction}]")
        if not isinstance(observed, (int, float)) or observed != observed:  # None or NaN: nothing labelled
            return (f"no row is labelled real or fake, so the share of fakes cannot be judged against {bounds}: "
                    "crawl labelled clips")
        return (f"the share of fakes among labelled rows is {observed:.3f}, outside {bounds}: crawl more clips of "
                "the rarer class, or widen the bounds in params.yaml")
    if name == f"expect_column_values_to_be_in_set({GROUP_IN_ONE_SPLIT_COLUMN})":
        return (f"{len(outcome.rows) or 'some'} rows share a pair or near-duplicate group with rows in another split"
                f"{f' (e.g. {examples})' if examples else ''}: ingest assigns splits per group, so this is a bug in "
                "split assignment, not bad data; no params setting fixes it (report it)")
    if name == "expect_column_values_to_be_unique(sample_id)":
        return (f"sample_id repeats{f' (e.g. {examples})' if examples else ''}: ingest keys rows by content hash, so "
                "this is a bug in the manifest builder; no params setting fixes it (report it)")
    if name.startswith("expect_column_to_exist"):
        return f"column {column} is missing: the manifest must follow vigil.core.sample.MANIFEST_SCHEMA"
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
) -> ValidationResult:
    """Validate a manifest table; write Data Docs under ``docs_dir`` (None: no docs).

    Never raises for bad data: every problem is a failed expectation in the result, row-level ones
    naming their rows (:meth:`ValidationResult.rejected_rows`), batch-level ones carrying advice that
    names the setting to change. Raises only when GX itself cannot run.
    """
    result = run_suite(with_derived_columns(df), lambda: build_suite(params, allowed_generators),
                       "manifest", docs_dir, n_rows=len(df))
    advised = tuple(replace(e, advice=batch_advice(e, params)) if not e.success and not e.rejects_rows else e
                    for e in result.expectations)
    return replace(result, expectations=advised)


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


def build_annotation_suite(params):
    """Expectations on a labelled version's annotation table (``vigil.core.annotation``)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(name="vigil_annotations", expectations=[
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="annotation_id", mostly=params.min_coverage),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=["synthetic", "teacher", "human"]),
        gxe.ExpectColumnValuesToBeInSet(column="annotation_label", value_set=["real", "fake"]),
        gxe.ExpectColumnMeanToBeBetween(column="_compliant", min_value=params.min_compliance_rate),
        gxe.ExpectColumnMeanToBeBetween(column="_fake_evidence", min_value=params.min_evidence_per_fake),
        gxe.ExpectColumnMeanToBeBetween(column="_label_agrees", min_value=params.min_label_agreement),
    ])


def validate_annotations(df: pd.DataFrame, params, docs_dir: str | Path | None) -> ValidationResult:
    """Validate an annotation table: coverage, grammar compliance rate, evidence per fake and
    agreement with the dataset's labels (bounds from ``params``: vigil.config.params.AnnotateParams)."""
    derived = df.copy()
    annotated = derived["annotation_id"].notna()
    derived["_compliant"] = derived["compliant"].where(annotated).astype("float64")
    derived["_label_agrees"] = derived["label_agrees"].where(annotated).astype("float64")
    derived["_fake_evidence"] = derived["n_evidence"].where(annotated & (derived["label"] == "fake")).astype("float64")
    return run_suite(derived, lambda: build_annotation_suite(params), "annotations", docs_dir, n_rows=len(df))
