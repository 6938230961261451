"""``vigil run``: the main job (the cycle flow) and its summary."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from vigil.cli.console import out, setup_logging
from vigil.cli.errors import VigilTyper
from vigil.cli.options import ParamsOption


def register(app: VigilTyper) -> None:
    app.command()(run)


def run(params_file: ParamsOption = None,
        train: Annotated[bool, typer.Option(help="Train and register a candidate after the data plane.")] = True,
        gate: Annotated[bool, typer.Option(help="Gate the candidate against the champion after training.")] = True
        ) -> None:
    """The main job: crawl, ingest, validate, version, annotate, train a candidate, gate it.

    Runs the cycle Prefect flow with the parameters loaded once: crawl → ingest → annotate on the
    configured sources (by default the built-in zoo gallery), then training (`dvc repro`: prepare →
    pretrain → SFT → GRPO → held-out check) on the new labelled version and the candidate's
    registration, then the gate: candidate vs champion on the fixed set and the recent slice, the
    gate's rules, the decision (store + ledger) and its report. A passing candidate becomes the
    champion. Ends with a summary, the verdict and the report's path (a refusal is reported, not an
    error: exit 0). Per-clip detail goes to <workspace>/logs/vigil.log.
    """
    from vigil.jobs.runtime import configure_prefect, load_runtime

    rt = load_runtime(params_file)
    configure_prefect(rt.settings)
    log_file = setup_logging(rt.settings.log_level, rt.workspace)
    from vigil.flows.cycle import cycle_flow

    report = cycle_flow(params_ref=rt.params_hash, train=train, gate=gate)
    out.print(summary_table(rt, report, log_file))
    _print_rejections(report)
    if report.train:
        from vigil.cli.train import candidate_table

        out.print(candidate_table(report.train))
    if report.gate:
        from vigil.cli.evaluate import print_gate

        print_gate(report.gate)
    out.print("next: [bold]vigil data versions[/bold], [bold]vigil data diff A B[/bold], [bold]vigil audit verify[/bold]")
    if report.rejected:  # a refused candidate is a verdict, not a failed job (`vigil gate` exits 1 on it)
        raise typer.Exit(1)


def summary_table(rt, report, log_file) -> Table:
    """One row per stage with its counts, and where each result lies."""
    from vigil.jobs.audit import audit_verify

    crawl, ing, ann = report.crawl, report.ingest, report.annotate
    audit = audit_verify(rt)
    table = Table(title="Vigil cycle", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("where / how many", overflow="fold")  # paths must stay copyable
    table.add_row("crawl", crawl.summary())
    table.add_row("ingest", f"{ing.n_samples} samples ({ing.n_new} new), {len(ing.problems)} quarantined")
    table.add_row("dataset version", f"{ing.version_tag or '-'} ({ing.status})")
    table.add_row("registry", str(rt.workspace / "registry"))
    table.add_row("store", rt.store.uri())
    if ing.docs_index:
        table.add_row("data docs", str(ing.docs_index))
    verdict = ("TAMPERED: see vigil audit verify" if audit.tampered else "verified, no orphans" if audit.ok
               else f"verified, {len(audit.errors)} orphan(s): see vigil audit verify")
    table.add_row("ledger", f"{audit.ledger.n_events} events, {verdict} ({audit.n_tags} tags, {audit.n_clips} clips, "
                            f"{audit.n_models} models cross-checked)")
    table.add_row("parameters", f"snapshot {report.params_hash[:12]} ({rt.params_uri})")
    for key, counts in (ing.counts or {}).items():
        table.add_row(f"by {key}", ", ".join(f"{k}: {v}" for k, v in counts.items()))
    if ann:
        table.add_row("annotate", f"{ann.source} ({ann.annotator}): {ann.n_accepted} accepted, "
                                  f"{ann.n_rejected} rejected; selected {ann.selected or 'none'}")
        table.add_row("labelled version", f"{ann.version_tag or '-'} ({ann.status})")
        if ann.quality_report:
            table.add_row("annotator quality", str(ann.quality_report))
    if log_file:
        table.add_row("log", str(log_file))
    return table


def _print_rejections(report) -> None:
    from vigil.cli.data import print_ingest_problems

    print_ingest_problems(report.ingest)
    if report.ingest.status == "rejected":
        out.print(f"[red]validation failed[/red]: {', '.join(report.ingest.failed_expectations)}")
    if report.annotate and report.annotate.status == "rejected":
        out.print(f"[red]annotation validation failed[/red]: {', '.join(report.annotate.failed_expectations)}")
