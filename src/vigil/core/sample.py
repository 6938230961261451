"""The manifest schema: one row per sample of a dataset version, in one Parquet table.

This module is the single place that defines what a manifest row is. Ingest writes rows with
:func:`write_manifest`; validation, splits, the data registry, training and evaluation read them
with :func:`read_manifest`, which checks the file against :data:`MANIFEST_SCHEMA` and names the
first offending column, so a manifest written by an older or foreign tool fails loudly at the
boundary instead of deep inside a training run.

The Arrow schema is derived from the :class:`Sample` model (field order, types, nullability), so a
field added to the model is a column of the table without a second edit.

>>> import tempfile, pathlib
>>> row = Sample.example()
>>> path = pathlib.Path(tempfile.mkdtemp()) / "manifest.parquet"
>>> _ = write_manifest([row], path)
>>> df = read_manifest(path)
>>> list(df.columns) == list(Sample.model_fields), df.loc[0, "label"], df.loc[0, "artifact_types"]
(True, 'fake', ['temporal_flicker'])
"""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.config.errors import InputError

log = logging.getLogger(__name__)

Label = Literal["real", "fake", "unknown"]
Split = Literal["train", "val", "test"]

LABELS: tuple[str, ...] = typing.get_args(Label)
SPLITS: tuple[str, ...] = typing.get_args(Split)

_HEX64 = r"^[0-9a-f]{64}$"


class ManifestSchemaError(InputError, ValueError):
    """A manifest file does not match :data:`MANIFEST_SCHEMA`; the message names the column."""


class Sample(BaseModel):
    """One clip of a dataset version: identity, provenance, claimed truth, split, media facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_id: str = Field(pattern=_HEX64, description="sha256 of the media bytes (lower-case hex).")
    source_url: str = Field(description="URL the media was downloaded from (after redirects).")
    domain: str = Field(description="Host the media came from.")
    source: str = Field(description="Configured source name.")
    crawled_at: datetime = Field(description="When the bytes were downloaded (UTC).")
    generator: str = Field(description="Claimed generator: 'real', a generator name, or 'unknown'.")
    label: Label = Field(description="'real', 'fake' or 'unknown' (not yet labelled).")
    pair_id: str | None = Field(None, description="Shared by a fake and the real clip it was generated from.")
    split: Split = Field(description="train / val / test, from vigil.core.splits (group-aware, stable).")
    container: str = Field(description="Container format as probed (e.g. 'mp4').")
    codec: str = Field(description="Video codec as probed (e.g. 'h264').")
    duration_s: float = Field(ge=0, description="Duration, seconds.")
    fps: float = Field(ge=0, description="Average frame rate.")
    width: int = Field(ge=0, description="Displayed width, px.")
    height: int = Field(ge=0, description="Displayed height, px.")
    frame_count: int = Field(ge=0, description="Frames in the stream.")
    bitrate: int | None = Field(None, ge=0, description="Bits per second, when the container says.")
    rotation: int = Field(0, description="Display rotation, degrees.")
    frames_dir: str = Field(description="Frame folder (1.png … N.png + timestamps.txt), relative to the frames root.")
    n_frames: int = Field(ge=0, description="Frames sampled into frames_dir.")
    phash: str = Field(description="Perceptual hash of the clip (vigil.core.phash).")
    near_duplicate_group: str | None = Field(None, description="Id shared by clips that are the same content re-encoded.")
    licence: str | None = Field(None, description="Licence or terms note from the source.")
    prompt: str | None = Field(None, description="Generation prompt, when the source published it.")
    media_key: str = Field(description="Store key of the raw bytes.")
    artifact_count: int = Field(0, ge=0, description="Ground-truth artifacts the source published.")
    artifact_types: list[str] = Field(default_factory=list, description="Their L3 taxonomy names.")
    has_masks: bool = Field(False, description="Per-frame artifact masks are available.")

    @field_validator("crawled_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Parquet stores UTC instants; a naive time is taken as UTC rather than guessed local."""
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    @classmethod
    def example(cls, **overrides: Any) -> Sample:
        """A valid row for doctests and tests; ``overrides`` replace fields."""
        base: dict[str, Any] = dict(
            sample_id="a" * 64, source_url="http://gallery.local/media/a.mp4", domain="gallery.local",
            source="zoo-gallery", crawled_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
            generator="zoo-gen-a", label="fake", pair_id="pair-1", split="train",
            container="mp4", codec="h264", duration_s=2.0, fps=8.0, width=160, height=120,
            frame_count=16, bitrate=200_000, rotation=0, frames_dir="frames/aa/" + "a" * 64,
            n_frames=16, phash="0" * 48, near_duplicate_group=None, licence="CC-BY-4.0",
            prompt="a red ball", media_key="media/aa/" + "a" * 64, artifact_count=1,
            artifact_types=["temporal_flicker"], has_masks=True,
        )
        base.update(overrides)
        return cls(**base)


def _arrow_type(annotation: Any) -> tuple[pa.DataType, bool]:
    """Arrow type and nullability of a model field's annotation."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"unsupported union {annotation!r} in the manifest schema")
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if origin is Literal:
        return pa.string(), nullable
    if origin is list:
        (item,) = typing.get_args(annotation)
        item_type, _ = _arrow_type(item)
        return pa.list_(item_type), nullable
    simple = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(),
              datetime: pa.timestamp("us", tz="UTC")}
    if annotation in simple:
        return simple[annotation], nullable
    raise TypeError(f"unsupported type {annotation!r} in the manifest schema")


def _schema_from_model(model: type[BaseModel]) -> pa.Schema:
    hints = typing.get_type_hints(model)
    fields = []
    for name, info in model.model_fields.items():
        arrow_type, nullable = _arrow_type(hints[name])
        fields.append(pa.field(name, arrow_type, nullable=nullable,
                               metadata={"description": info.description or ""}))
    return pa.schema(fields, metadata={"vigil.schema": "manifest/1"})


#: The Parquet schema of a manifest, derived from :class:`Sample`.
MANIFEST_SCHEMA: pa.Schema = _schema_from_model(Sample)
MANIFEST_COLUMNS: tuple[str, ...] = tuple(MANIFEST_SCHEMA.names)


def _as_row(row: Sample | Mapping[str, Any]) -> dict[str, Any]:
    sample = row if isinstance(row, Sample) else Sample.model_validate(dict(row))
    return sample.model_dump()


def manifest_table(rows: Iterable[Sample | Mapping[str, Any]]) -> pa.Table:
    """An Arrow table of validated rows (dicts are validated through :class:`Sample`)."""
    return pa.Table.from_pylist([_as_row(r) for r in rows], schema=MANIFEST_SCHEMA)


def write_manifest(rows: Iterable[Sample | Mapping[str, Any]] | pd.DataFrame, path: str | Path) -> Path:
    """Write rows as the manifest Parquet file, atomically (a reader never sees half a file).

    Rows are sorted by ``sample_id`` so that the same dataset gives the same bytes, which keeps
    DVC from storing a new object when nothing changed.
    """
    if isinstance(rows, pd.DataFrame):
        rows = frame_to_rows(rows)
    table = manifest_table(rows)
    if table.num_rows:
        table = table.sort_by("sample_id")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    log.debug("wrote manifest %s (%d rows)", path, table.num_rows)
    return path


def frame_to_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a manifest DataFrame as plain dicts (NaN/NA → None), ready for :class:`Sample`."""
    records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
    for rec in records:
        if rec.get("artifact_types") is None:
            rec["artifact_types"] = []
        else:
            rec["artifact_types"] = list(rec["artifact_types"])
    return records


def check_schema(schema: pa.Schema, where: str = "manifest") -> None:
    """Raise :class:`ManifestSchemaError` naming the first missing or mistyped column."""
    for expected in MANIFEST_SCHEMA:
        idx = schema.get_field_index(expected.name)
        if idx < 0:
            raise ManifestSchemaError(f"{where}: column {expected.name!r} is missing (expected {expected.type})")
        got = schema.field(idx)
        if not got.type.equals(expected.type):
            raise ManifestSchemaError(
                f"{where}: column {expected.name!r} has type {got.type}, expected {expected.type}")
    extra = [n for n in schema.names if n not in MANIFEST_COLUMNS]
    if extra:
        log.warning("%s: ignoring columns not in the manifest schema: %s", where, ", ".join(extra))


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest as a DataFrame in schema column order, after checking the file's schema.

    Nullable integer columns come back as pandas ``Int64`` (not float with NaN) and list columns
    as Python lists, so that a row round-trips through :class:`Sample`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    schema = pq.read_schema(path)
    check_schema(schema, str(path))
    table = pq.read_table(path, columns=list(MANIFEST_COLUMNS))
    df = table.to_pandas()
    for field in MANIFEST_SCHEMA:
        if pa.types.is_integer(field.type) and field.nullable:
            df[field.name] = df[field.name].astype("Int64")
        elif pa.types.is_list(field.type):
            df[field.name] = [list(v) if v is not None else [] for v in df[field.name]]
    return df


def empty_manifest() -> pd.DataFrame:
    """A manifest DataFrame with no rows and the right columns and dtypes."""
    return MANIFEST_SCHEMA.empty_table().to_pandas()
