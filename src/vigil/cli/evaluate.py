"""``vigil evaluate`` and ``vigil gate``: a model's metrics on an evaluation set; the promotion gate."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from vigil.cli.console import out, progress_bar, setup_logging
from vigil.cli.errors import VigilTyper
from vigil.cli.options import ParamsOption


def register(app: VigilTyper) -> None:
    app.command()(evaluate)
    app.command("gate")(gate_command)


def print_gate(outcome) -> None:
    """The verdict, every failed rule, the report's paths and the metrics comparison."""
    decision = outcome.decision
    verdict = decision.verdict.upper()
    colour = "green" if verdict == "PASS" else "red"
    judged = [r for r in decision.rules if r.passed is not None]
    out.print(f"[bold {colour}]gate: {verdict}[/bold {colour}] {decision.candidate} vs "
              f"{decision.champion or 'no champion (minimum levels only)'}: "
              f"{sum(r.passed for r in judged)}/{len(judged)} rules pass ({decision.decision_id})")
    for rule in decision.rules:
        if rule.passed is False:
            out.print(f"  [red]failed[/red] {rule.name}: {rule.detail}")
    for note in decision.notes:
        out.print(f"  note: {note}")
    if outcome.promoted:
        out.print(f"  {decision.candidate} is now the champion")
    out.print(f"report: {outcome.report_html}")
    out.print(f"        {outcome.report_md}")
    out.print(f"compare: {outcome.metrics_diff}")


def evaluate(model: Annotated[str, typer.Argument(help="A model version (mv-…), 'champion', or a model folder.")],
             dataset: Annotated[str, typer.Argument(
                 help="'fixed' (train.heldout's zoo clips), 'zoo:SEED', 'latest' or a version such as ds-0002 "
                      "(its evaluate.recent_split; ds-0002:val for another split), or an evaluation-set folder.")],
             params_file: ParamsOption = None,
             server: Annotated[Optional[str], typer.Option(
                 help="Answer through this OpenAI-compatible server (e.g. http://127.0.0.1:8000) instead of "
                      "loading the model here.")] = None,
             served_model: Annotated[Optional[str], typer.Option(help="Model name the server knows (default: MODEL).")] = None,
             ) -> None:
    """Run a model on an evaluation set; write predictions (Skyra's layout) and metrics.

    Predictions are a JSON list with Skyra's fields (video_id as generator/base_id, aigc_model_name,
    gt, answer, response) plus the parsed evidence, the fake probability and the latency, so Skyra's
    evaluator scores them unchanged. Metrics: Skyra's paired per-generator protocol (Vigil's strict
    reading, and beside it Skyra's eval.py number for number: skyra_eval), Ivy-Fake's
    accuracy and macro-F1, AP/ROC-AUC/ECE from the fake probability, FPR on reals, format
    compliance, grounding (IoU, type accuracy, J&F where masks exist), ROUGE-L, latency, slices.
    """
    from vigil.jobs.evaluate import evaluate as run_evaluation
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    setup_logging(rt.settings.log_level, rt.workspace)
    with progress_bar("evaluate") as report:
        result = run_evaluation(rt, model, dataset, server=server, served_model=served_model, progress=report)
    m = result.metrics
    table = Table(title=f"{result.model} on {result.evalset.evalset_id} ({len(result.evalset.clips)} clips)",
                  show_header=False)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", overflow="fold")
    skyra = m["skyra"]
    table.add_row("paired balanced accuracy", f"{skyra['paired_balanced_accuracy']} (mean of {skyra['generators']} generators)")
    for g, row in skyra["per_generator"].items():
        table.add_row(f"  {g}", f"pBA {row['paired_balanced_accuracy']}, fake recall {row['fake_recall']}, "
                                f"F1 {row['f1']} ({row['pairs']} pairs)")
    skyra_eval = m.get("skyra_eval")
    if skyra_eval:  # metrics cached before the skyra_eval mode existed have none
        printed = skyra_eval["as_printed"]
        table.add_row("Skyra eval.py (skyra_eval)",
                      f"ACC {printed['acc']}%, recall {printed['recall']}%, F1 {printed['f1']}% "
                      f"({skyra_eval['pairs']} pairs; unparsable read as Fake: {skyra_eval['read_as_fake']}; "
                      f"left out: {skyra_eval['unpaired_fakes']} unpaired fakes, "
                      f"{skyra_eval['unpaired_reals']} unpaired reals)")
    for key in ("accuracy", "macro_f1", "fpr_real", "format_compliance", "ap", "roc_auc", "ece", "rouge_l"):
        table.add_row(key, str(m.get(key)))
    table.add_row("unparsable", str(m["unparsable"]))
    if m.get("grounding"):
        g = m["grounding"]
        table.add_row("grounding", f"tIoU {g['temporal_iou']}, box IoU {g['box_iou']}, type accuracy {g['type_accuracy']}")
    if m.get("masks"):
        table.add_row("masks", f"J {m['masks']['j']}, F {m['masks']['f']}, J&F {m['masks']['j_and_f']}")
    table.add_row("latency", f"p50 {m['latency']['p50_s']} s, p95 {m['latency']['p95_s']} s")
    table.add_row("predictions", str(result.predictions_path))
    table.add_row("metrics", str(result.metrics_path))
    out.print(table)


def gate_command(candidate: Annotated[str, typer.Argument(help="Candidate model version (mv-…).")],
                 params_file: ParamsOption = None,
                 champion: Annotated[Optional[str], typer.Option(
                     help="Compare with this version instead of the champion alias.")] = None,
                 promote: Annotated[bool, typer.Option(
                     help="On a pass, make the candidate the champion.")] = True) -> None:
    """Gate a candidate against the champion (the evaluate flow); exits 1 when it is refused.

    Both models answer the fixed evaluation set and the recent slice; params.yaml's gate rules are
    judged on bootstrap intervals; the decision goes to the store and the ledger; the report is
    written as HTML and Markdown.
    """
    from vigil.jobs.runtime import configure_prefect, load_runtime

    rt = load_runtime(params_file)
    configure_prefect(rt.settings)
    setup_logging(rt.settings.log_level, rt.workspace)
    from vigil.flows.evaluate import evaluate_flow

    outcome = evaluate_flow(candidate, champion=champion, promote=promote, params_ref=rt.params_hash)
    print_gate(outcome)
    if outcome.decision.verdict != "pass":
        raise typer.Exit(1)
