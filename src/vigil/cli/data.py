"""``vigil crawl``, ``vigil ingest`` and ``vigil data``: getting clips in and dataset versions out."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from vigil.cli.console import out, progress_bar, setup_logging
from vigil.cli.errors import VigilTyper, sub_app
from vigil.cli.options import ParamsOption

data_app = sub_app("Dataset versions in the data registry.")


def register(app: VigilTyper) -> None:
    app.command()(crawl)
    app.command()(ingest)
    app.add_typer(data_app, name="data")


def crawl(params_file: ParamsOption = None) -> None:
    """Crawl the configured sources once, with a progress bar (no Prefect server needed).

    Prints one line per source (what was read, what came of it, or why nothing did), the problems and
    the near-duplicates; ends with exit 3 (service unavailable) when no source could be reached at all."""
    from vigil.config.errors import ServiceError
    from vigil.jobs.crawl import resolved_sources, run_crawl
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    setup_logging("WARNING", rt.workspace)
    with resolved_sources(rt.params, rt.workspace) as sources, progress_bar("crawl") as update:
        report = run_crawl(rt, sources, progress=update)
    out.print(f"crawl: {report.summary()}")
    for outcome in report.sources:
        out.print(f"  {outcome.line()}", markup=False)
    print_crawl_problems(report)
    nothing = report.none_reached()
    if nothing:
        raise ServiceError(nothing)


def print_crawl_problems(report, limit: int = 20) -> None:
    """The URLs that did not become items and the near-duplicates, first ``limit`` of each, one a line."""
    for problem in report.problems[:limit]:
        out.print(f"  {problem.reason}: {problem.url} ({problem.detail})", markup=False)
    if len(report.problems) > limit:
        out.print(f"  … and {len(report.problems) - limit} more problems")
    for pair in report.near_duplicate_pairs[:limit]:
        out.print(f"  near-duplicate: {pair.media_url} ≈ {pair.of_media_url or pair.of_sha256} "
                  f"(not stored again)", markup=False)
    if len(report.near_duplicate_pairs) > limit:
        out.print(f"  … and {len(report.near_duplicate_pairs) - limit} more near-duplicates")


def ingest(params_file: ParamsOption = None) -> None:
    """Probe, sample, split and validate everything crawled; publish a new dataset version if it passes."""
    from vigil.jobs.ingest import ingest as run_ingest
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    setup_logging("WARNING", rt.workspace)
    with progress_bar("ingest") as update:
        report = run_ingest(rt, progress=update)
    out.print(f"ingest: {report.summary()}")
    print_ingest_problems(report)
    if report.validation_summary:
        out.print(report.validation_summary, markup=False)
    if report.status == "rejected":
        raise typer.Exit(1)


def print_ingest_problems(report, limit: int = 20) -> None:
    """The samples an ingest left out (first ``limit``) and its batch-level failures, each on one line.

    Each quarantine's detail names its cause and the setting to change; past ``limit`` rows, a count
    per reason says what the rest were (a whole source without a label is one line, not hundreds)."""
    for problem in report.problems[:limit]:
        out.print(f"  quarantined {problem.sample_id[:12]} ({problem.stage}): {problem.reason}: {problem.detail}",
                  markup=False)
    if len(report.problems) > limit:
        by_reason: dict[str, int] = {}
        for problem in report.problems:
            by_reason[problem.reason] = by_reason.get(problem.reason, 0) + 1
        counts = ", ".join(f"{reason} ×{n}" for reason, n in sorted(by_reason.items(), key=lambda kv: -kv[1]))
        out.print(f"  … and {len(report.problems) - limit} more under quarantine/ in the store (all: {counts})",
                  markup=False)
    for problem in report.batch_problems:
        out.print(f"  batch: {problem}", markup=False)


@data_app.command("versions")
def data_versions() -> None:
    """List dataset versions (newest last)."""
    from vigil.io.registry import list_versions, open_registry
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    versions = list_versions(open_registry(rt.workspace / "registry", rt.store))
    if not versions:
        out.print("no dataset versions yet: run [bold]vigil run[/bold]")
        return
    table = Table("tag", "created", "samples", "git rev", "manifest md5")
    for v in versions:
        table.add_row(v.tag, str(v.created_at), str(v.n_samples), v.git_rev[:10], v.manifest_md5 or "-")
    out.print(table)


@data_app.command("diff")
def data_diff(a: Annotated[str, typer.Argument(help="Older version tag, e.g. ds-0001.")],
              b: Annotated[str, typer.Argument(help="Newer version tag.")]) -> None:
    """What changed between two dataset versions: samples added/removed, counts by generator, label, split."""
    from vigil.io.registry import diff_versions, open_registry
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    out.print(diff_versions(open_registry(rt.workspace / "registry", rt.store), a, b).format(), markup=False)


@data_app.command("exclude")
def data_exclude(
    sample: Annotated[str, typer.Argument(help="Sample id: its sha256 or a unique prefix of at least 8 characters.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is left out (recorded in the ledger).")],
) -> None:
    """Leave a sample out of every later dataset version, for a reason validation cannot judge."""
    from vigil.jobs.ingest import exclude_sample
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime()
    done = exclude_sample(rt, sample, reason)
    out.print(f"excluded {done.sample_id}: {done.reason} (by {done.actor}; {rt.store.uri(done.quarantine_key)})",
              markup=False)
    if done.in_latest_version:
        out.print(f"{done.in_latest_version} still holds it: the next `vigil ingest` publishes a version without it",
                  markup=False)
