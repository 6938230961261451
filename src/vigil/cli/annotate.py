"""``vigil annotate`` and ``vigil labels``: grounded explanations, flags and Label Studio round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vigil.cli.console import out, progress_bar, setup_logging
from vigil.cli.errors import VigilTyper, sub_app
from vigil.cli.options import ParamsOption

labels_app = sub_app("Annotation records: flag for re-annotation, Label Studio export/import.")


def register(app: VigilTyper) -> None:
    app.command()(annotate)
    app.add_typer(labels_app, name="labels")


def annotate(
    params_file: ParamsOption = None,
    reannotate: Annotated[bool, typer.Option("--reannotate", help="Also redo stale, hard and flagged samples.")] = False,
    predictions: Annotated[Optional[Path], typer.Option(help="A model's predictions JSON: samples it gets wrong are hard examples (with --reannotate).")] = None,
) -> None:
    """Explain the newest dataset version's clips and publish a labelled version.

    Synthetic explanations from the zoo's ground truth by default; the teacher model at
    VIGIL_TEACHER_URL when set. A fake without ground truth that no teacher grounds keeps its
    verdict as a label-only annotation, queued for people in the Label Studio export.
    Annotations are appended, never overwritten.
    """
    from vigil.jobs.annotate import annotate as run_annotate
    from vigil.jobs.runtime import load_runtime, teacher_endpoint

    rt = load_runtime(params_file)
    setup_logging("WARNING", rt.workspace)
    with progress_bar("annotate") as update:
        report = run_annotate(rt, teacher=teacher_endpoint(rt.settings), reannotate=reannotate,
                              predictions=predictions, progress=update)
    out.print(f"annotate: {report.summary()}")
    if report.n_queued_for_humans:
        out.print(f"{report.n_queued_for_humans} label-only sample(s) (a verdict, no grounded artifact) wait for "
                  "people: `vigil labels export-labelstudio tasks.json` puts them first", markup=False)
    if report.prompt_tokens or report.completion_tokens:
        out.print(f"teacher usage: {report.prompt_tokens} prompt + {report.completion_tokens} completion tokens, "
                  f"${report.cost_usd:.4f}")
    if report.quality_report:
        out.print(f"annotator quality: {report.quality_report}", markup=False)
    if report.validation_summary:
        out.print(report.validation_summary, markup=False)
    if report.status == "rejected":
        raise typer.Exit(1)


@labels_app.command("flag")
def labels_flag(sample_id: Annotated[str, typer.Argument(help="sha256 sample id to re-annotate.")],
                by: Annotated[str, typer.Option(help="Who flags it (recorded).")],
                reason: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Flag a sample for re-annotation (the next `vigil annotate --reannotate` redoes it)."""
    from vigil.io.annotations import flag_sample
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime()
    out.print(f"flagged: {rt.store.uri(flag_sample(rt.store, sample_id, by=by, reason=reason))}")


@labels_app.command("export-labelstudio")
def labels_export(out_path: Annotated[Path, typer.Argument(help="Tasks JSON to write (Label Studio import format).")],
                  tag: Annotated[Optional[str], typer.Option(help="Labelled version (default: newest).")] = None,
                  media_base_url: Annotated[str, typer.Option(help="URL prefix under which Label Studio can fetch raw media keys.")] = "/data/local-files/?d=",
                  config_path: Annotated[Optional[Path], typer.Option(help="Also write the labeling config XML here.")] = None) -> None:
    """Export a labelled version as Label Studio tasks, its annotations as pre-annotations."""
    from vigil.jobs.labelstudio import export_version
    from vigil.jobs.runtime import load_runtime

    report = export_version(load_runtime(), out_path, tag=tag, media_base_url=media_base_url, config_path=config_path)
    out.print(f"wrote {report.tasks_path}: {report.n_tasks} task(s), {report.n_needs_grounding} label-only "
              "first (needs_grounding: a person grounds these first)", markup=False)


@labels_app.command("import-labelstudio")
def labels_import(export_path: Annotated[Path, typer.Argument(help="Label Studio JSON export.")],
                  params_file: ParamsOption = None) -> None:
    """Import human annotations from a Label Studio export (kept as new records, with who and when)."""
    from vigil.jobs.labelstudio import import_export
    from vigil.jobs.runtime import load_runtime

    report = import_export(load_runtime(params_file), export_path)
    out.print(f"imported {report.n_imported} human annotation(s); {len(report.problems)} problem(s)")
    for problem in report.problems[:20]:
        out.print(f"  {problem}", markup=False)
