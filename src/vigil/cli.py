"""The ``vigil`` command line: one Typer app over the jobs and flows."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vigil.settings import ConfigError

app = typer.Typer(
    help="Vigil keeps an explainable detector of AI-generated video current: crawl, ingest, "
         "validate, version and annotate data, train a candidate, evaluate and gate it against the champion.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
zoo_app = typer.Typer(help="The synthetic generator zoo and its gallery web site.", no_args_is_help=True)
data_app = typer.Typer(help="Dataset versions in the data registry.", no_args_is_help=True)
audit_app = typer.Typer(help="The lineage ledger: verify and read it.", no_args_is_help=True)
store_app = typer.Typer(help="The object store.", no_args_is_help=True)
flows_app = typer.Typer(help="Prefect deployments for production.", no_args_is_help=True)
labels_app = typer.Typer(help="Annotation records: flag for re-annotation, Label Studio export/import.",
                         no_args_is_help=True)
train_app = typer.Typer(help="Train SFT then GRPO (dvc.yaml stages) and register a candidate model version.",
                        invoke_without_command=True)
for sub, name in [(config_app, "config"), (zoo_app, "zoo"), (data_app, "data"), (audit_app, "audit"),
                  (store_app, "store"), (flows_app, "flows"), (labels_app, "labels"), (train_app, "train")]:
    app.add_typer(sub, name=name)

console = Console(stderr=True)
out = Console(soft_wrap=True)  # lines stay whole when piped (grep, logs, tests)

ParamsOption = Annotated[Optional[Path], typer.Option("--params", "-p", help="params.yaml to use (default: VIGIL_PARAMS_FILE or ./params.yaml).")]


def friendly_errors(fn: Callable) -> Callable:
    """Configuration and store errors end the command with their message, not a traceback."""
    from vigil.io.store import StoreError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            console.print(f"[red]configuration error[/red]: {exc}")
            raise typer.Exit(2) from None
        except StoreError as exc:
            console.print(f"[red]store error[/red]: {exc}")
            raise typer.Exit(3) from None
        except Exception as exc:
            # imported here, not at decoration: every command would otherwise load pandas and DVC's adapter
            from vigil.io.registry import RegistryError
            from vigil.jobs.evaluate import EvaluateError
            from vigil.jobs.train import TrainError

            if not isinstance(exc, (TrainError, RegistryError, EvaluateError)):
                raise
            console.print(f"[red]error[/red]: {exc}")
            raise typer.Exit(4) from None

    return wrapper


@contextmanager
def progress_bar(job: str):
    """One rich progress bar for a job, fed by its ``(event, done, total)`` callbacks; the
    description shows the latest event (stored, quarantined, accepted, …)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(job, total=None)

        def update(event: str, done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total, description=f"{job}: {event}")

        yield update


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # one line per HTTP request to Prefect's API or the gallery buries what matters
    for noisy in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


# ---------------------------------------------------------------------------------------------- run
@app.command()
@friendly_errors
def run(params_file: ParamsOption = None,
        train: Annotated[bool, typer.Option(help="Train and register a candidate after the data plane.")] = True,
        gate: Annotated[bool, typer.Option(help="Gate the candidate against the champion after training.")] = True
        ) -> None:
    """The main job: crawl, ingest, validate, version, annotate, train a candidate, gate it.

    Runs the data-plane Prefect flow (crawl → ingest → annotate) on the configured sources, by
    default the built-in zoo gallery, then the train flow (`dvc repro`: prepare → pretrain → SFT →
    GRPO → held-out check) on the new labelled version and registers the candidate, then the
    evaluate flow: candidate vs champion on the fixed set and the recent slice, the gate's rules,
    the decision (store + ledger) and its report. A passing candidate becomes the champion. Ends
    with the verdict and the report's path (a refusal is reported, not an error: exit 0).
    """
    from vigil.jobs.runtime import configure_prefect, load_runtime

    rt = load_runtime(params_file)
    configure_prefect(rt.settings)
    _setup_logging(rt.settings.log_level)
    from flows.data_plane import data_plane_flow

    result = data_plane_flow(str(params_file) if params_file else None)
    rejected = result["ingest"]["status"] == "rejected" or (result.get("annotate") or {}).get("status") == "rejected"
    if train and not rejected:
        from flows.train import train_flow

        result["train"] = train_flow(str(params_file) if params_file else None)
        if gate:
            from flows.evaluate import evaluate_flow

            result["gate"] = evaluate_flow(result["train"]["version_id"], str(params_file) if params_file else None)
    _print_summary(rt, result)
    if result.get("gate"):
        _print_gate(result["gate"])
    if rejected:  # a refused candidate is a verdict, not a failed job (`vigil gate` exits 1 on it)
        raise typer.Exit(1)


def _print_summary(rt, result: dict) -> None:
    from vigil.io.ledger import verify_ledger

    crawl, ing = result["crawl"], result["ingest"]
    ledger = verify_ledger(rt.ledger.store)
    table = Table(title="Vigil data plane", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("where / how many", overflow="fold")  # paths must stay copyable
    table.add_row("crawl", f"{crawl['stored']} stored, {crawl['duplicates']} duplicates, "
                           f"{crawl['near_duplicates']} near-duplicates, {crawl['quarantined']} quarantined, "
                           f"{crawl['skipped']} skipped, {crawl['failed']} failed")
    table.add_row("ingest", f"{ing['n_samples']} samples ({ing['n_new']} new), {len(ing['problems'])} quarantined")
    table.add_row("dataset version", f"{ing['version_tag'] or '-'} ({ing['status']})")
    table.add_row("registry", str(rt.workspace / "registry"))
    table.add_row("store", rt.store.uri())
    if ing.get("docs_index"):
        table.add_row("data docs", str(ing["docs_index"]))
    table.add_row("ledger", f"{ledger.n_events} events, {'verified' if ledger.ok else 'TAMPERED'}")
    for key, counts in (ing.get("counts") or {}).items():
        table.add_row(f"by {key}", ", ".join(f"{k}: {v}" for k, v in counts.items()))
    ann = result.get("annotate")
    if ann:
        table.add_row("annotate", f"{ann['source']} ({ann['annotator']}): {ann['n_accepted']} accepted, "
                                  f"{ann['n_rejected']} rejected; selected {ann['selected'] or 'none'}")
        table.add_row("labelled version", f"{ann['version_tag'] or '-'} ({ann['status']})")
        if ann.get("quality_report"):
            table.add_row("annotator quality", str(ann["quality_report"]))
    train = result.get("train")
    if train:
        _print_candidate(train)
    out.print(table)
    if ing["status"] == "rejected":
        out.print(f"[red]validation failed[/red]: {', '.join(ing['failed_expectations'])}")
    if ann and ann["status"] == "rejected":
        out.print(f"[red]annotation validation failed[/red]: {', '.join(ann['failed_expectations'])}")
    out.print("next: [bold]vigil data versions[/bold], [bold]vigil data diff A B[/bold], [bold]vigil audit verify[/bold]")


# --------------------------------------------------------------------------------------- config
@config_app.command("show")
@friendly_errors
def config_show(params_file: ParamsOption = None) -> None:
    """Print the effective settings (secrets masked) and parameters."""
    from vigil.params import load_params, params_to_yaml
    from vigil.settings import ENV_PREFIX, load_settings

    settings = load_settings()
    params = load_params(params_file or settings.params_file)
    table = Table(title="settings (VIGIL_* environment / .env)")
    table.add_column("variable")
    table.add_column("value")
    for name, value in settings.masked().items():
        table.add_row(f"{ENV_PREFIX}{name.upper()}", value)
    out.print(table)
    out.print(f"[bold]parameters[/bold] ({params_file or settings.params_file}):")
    out.print(params_to_yaml(params), markup=False, highlight=False)


# ------------------------------------------------------------------------------------------ zoo
@zoo_app.command("serve")
@friendly_errors
def zoo_serve(
    params_file: ParamsOption = None,
    host: Annotated[str, typer.Option(help="Address to bind; keep it on loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8765,
) -> None:
    """Serve the zoo's gallery site (pages, feed, robots.txt, media) until interrupted."""
    from vigil.jobs.crawl import zoo_config
    from vigil.params import load_params
    from vigil.settings import load_settings
    from vigil.zoo.gallery import serve_forever

    settings = load_settings()
    params = load_params(params_file or settings.params_file)
    console.print(f"zoo gallery on http://{host}:{port}/ (Ctrl-C to stop)")
    serve_forever(settings.workspace_path / "gallery", zoo_config(params.zoo), host=host, port=port,
                  page_size=params.zoo.page_size)


# ---------------------------------------------------------------------------------- crawl/ingest
@app.command()
@friendly_errors
def crawl(params_file: ParamsOption = None) -> None:
    """Crawl the configured sources once, with a progress bar (no Prefect server needed)."""
    from vigil.jobs.crawl import resolved_sources, run_crawl
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    _setup_logging("WARNING")
    with resolved_sources(rt.params, rt.workspace) as sources, progress_bar("crawl") as update:
        report = run_crawl(rt.store, rt.workspace, rt.params, sources, ledger=rt.ledger, progress=update)
    out.print(f"crawl: {report.stored} stored, {report.duplicates} duplicates, {report.near_duplicates} "
              f"near-duplicates, {report.quarantined} quarantined, {report.skipped} skipped, {report.failed} failed "
              f"in {report.elapsed_s:.1f}s")
    for problem in report.problems[:20]:
        out.print(f"  {problem.reason}: {problem.url} ({problem.detail})", markup=False)


@app.command()
@friendly_errors
def ingest(params_file: ParamsOption = None) -> None:
    """Probe, sample, split and validate everything crawled; publish a new dataset version if it passes."""
    from vigil.jobs.ingest import ingest as run_ingest
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    _setup_logging("WARNING")
    with progress_bar("ingest") as update:
        report = run_ingest(rt.store, rt.workspace, rt.params, ledger=rt.ledger, progress=update)
    out.print(f"ingest: {report.status}; {report.n_samples} samples ({report.n_new} new), "
              f"{len(report.problems)} quarantined; version {report.version_tag or '-'}")
    if report.validation_summary:
        out.print(report.validation_summary, markup=False)
    if report.status == "rejected":
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------- annotate
@app.command()
@friendly_errors
def annotate(
    params_file: ParamsOption = None,
    reannotate: Annotated[bool, typer.Option("--reannotate", help="Also redo stale, hard and flagged samples.")] = False,
    predictions: Annotated[Optional[Path], typer.Option(help="A model's predictions JSON: samples it gets wrong are hard examples (with --reannotate).")] = None,
) -> None:
    """Explain the newest dataset version's clips and publish a labelled version.

    Synthetic explanations from the zoo's ground truth by default; the teacher model at
    VIGIL_TEACHER_URL when set. Annotations are appended, never overwritten.
    """
    from vigil.jobs.annotate import AnnotateError
    from vigil.jobs.annotate import annotate as run_annotate
    from vigil.jobs.runtime import load_runtime, teacher_endpoint

    rt = load_runtime(params_file)
    _setup_logging("WARNING")
    try:
        with progress_bar("annotate") as update:
            report = run_annotate(rt.store, rt.workspace, rt.params, teacher=teacher_endpoint(rt.settings),
                                  reannotate=reannotate, predictions=predictions, ledger=rt.ledger, progress=update)
    except AnnotateError as exc:
        console.print(f"[red]cannot annotate[/red]: {exc}")
        raise typer.Exit(2) from None
    out.print(f"annotate: {report.status}; {report.source} ({report.annotator}) on {report.base_tag}; "
              f"selected {report.selected or 'nothing'}; {report.n_accepted} accepted, {report.n_rejected} rejected "
              f"{report.rejection_reasons or ''}; labelled version {report.version_tag or '-'}")
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
@friendly_errors
def labels_flag(sample_id: Annotated[str, typer.Argument(help="sha256 sample id to re-annotate.")],
                by: Annotated[str, typer.Option(help="Who flags it (recorded).")],
                reason: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Flag a sample for re-annotation (the next `vigil annotate --reannotate` redoes it)."""
    from vigil.io.annotations import flag_sample
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime()
    out.print(f"flagged: {rt.store.uri(flag_sample(rt.store, sample_id, by=by, reason=reason))}")


@labels_app.command("export-labelstudio")
@friendly_errors
def labels_export(out_path: Annotated[Path, typer.Argument(help="Tasks JSON to write (Label Studio import format).")],
                  tag: Annotated[Optional[str], typer.Option(help="Labelled version (default: newest).")] = None,
                  media_base_url: Annotated[str, typer.Option(help="URL prefix under which Label Studio can fetch raw media keys.")] = "/data/local-files/?d=",
                  config_path: Annotated[Optional[Path], typer.Option(help="Also write the labeling config XML here.")] = None) -> None:
    """Export a labelled version as Label Studio tasks, its annotations as pre-annotations."""
    from vigil.jobs.labelstudio import export_version
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime()
    written = export_version(rt.store, rt.workspace, out_path, tag=tag, media_base_url=media_base_url,
                             config_path=config_path)
    out.print(f"wrote {written}", markup=False)


@labels_app.command("import-labelstudio")
@friendly_errors
def labels_import(export_path: Annotated[Path, typer.Argument(help="Label Studio JSON export.")],
                  params_file: ParamsOption = None) -> None:
    """Import human annotations from a Label Studio export (kept as new records, with who and when)."""
    from vigil.jobs.labelstudio import import_export
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    n, problems = import_export(rt.store, export_path, rt.params, ledger=rt.ledger)
    out.print(f"imported {n} human annotation(s); {len(problems)} problem(s)")
    for problem in problems[:20]:
        out.print(f"  {problem}", markup=False)


# ----------------------------------------------------------------------------------------- data
@data_app.command("versions")
@friendly_errors
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
@friendly_errors
def data_diff(a: Annotated[str, typer.Argument(help="Older version tag, e.g. ds-0001.")],
              b: Annotated[str, typer.Argument(help="Newer version tag.")]) -> None:
    """What changed between two dataset versions: samples added/removed, counts by generator, label, split."""
    from vigil.io.registry import diff_versions, open_registry
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    out.print(diff_versions(open_registry(rt.workspace / "registry", rt.store), a, b).format(), markup=False)


# ---------------------------------------------------------------------------------------- audit
@audit_app.command("verify")
@friendly_errors
def audit_verify() -> None:
    """Recompute the ledger's hash chain; name any event that was edited, deleted or reordered."""
    from vigil.io.ledger import verify_ledger
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    report = verify_ledger(rt.ledger.store)
    if report.ok:
        out.print(f"ledger OK: {report.n_events} events, chain intact ({rt.ledger.store.uri('ledger/')})")
        return
    out.print(f"[red]ledger TAMPERED[/red]: {len(report.problems)} problem(s) in {report.n_events} events")
    for problem in report.problems:
        out.print(f"  {problem}", markup=False)
    raise typer.Exit(1)


@audit_app.command("log")
@friendly_errors
def audit_log(last: Annotated[int, typer.Option(help="Show the last N events.")] = 20,
              as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines.")] = False) -> None:
    """Show the newest ledger events."""
    from vigil.io.ledger import read_events
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    events = read_events(rt.ledger.store)[-last:]
    if as_json:
        for e in events:
            out.print(json.dumps(e.model_dump(), default=str), markup=False, highlight=False)
        return
    table = Table("seq", "time", "action", "actor", "code rev", "outputs")
    for e in events:
        table.add_row(str(e.seq), e.time[:19], e.action, e.actor, e.code_rev[:12],
                      ", ".join(f"{k}={v}" for k, v in e.outputs.items() if not isinstance(v, list))[:80])
    out.print(table)


# ---------------------------------------------------------------------------------------- store
@store_app.command("check")
@friendly_errors
def store_check() -> None:
    """One request that proves the store's endpoint, credentials and bucket work."""
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=True)
    out.print(f"store OK: {rt.store.describe()}")


# ---------------------------------------------------------------------------------------- train
def _print_candidate(version: dict) -> None:
    heldout = version["metrics"].get("heldout", {})
    table = Table(title=f"Candidate model {version['version_id']}", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("dataset", f"{version['dataset']['tag']} ({version['dataset']['n_samples']} samples)")
    table.add_row("weights", version["weights_uri"])
    for stage in ("pretrain", "sft", "grpo"):
        m = version["metrics"].get(stage, {})
        if m:
            table.add_row(stage, ", ".join(f"{k} {m[k]}" for k in ("steps", "train_s", "reward_mean", "kl",
                                                                     "holdout_auc") if k in m) or "skipped")
    for name in ("sft", "grpo"):
        if name in heldout:
            h = heldout[name]
            table.add_row(f"held-out ({name})", f"paired balanced accuracy {h['paired_balanced_accuracy']}, "
                                                f"format compliance {h['format_compliance']}, {h['clips']} clips")
    out.print(table)


@train_app.callback()
@friendly_errors
def train(ctx: typer.Context, params_file: ParamsOption = None,
          force: Annotated[bool, typer.Option(help="Re-run every stage even when DVC finds it up to date.")] = False
          ) -> None:
    """Run the training stages (`dvc repro`: prepare, pretrain, sft, grpo, heldout) for train.dataset
    in params.yaml, then register the result as a candidate model version (store + ledger).

    Killed mid-run, the same command resumes each stage from its last checkpoint.
    """
    if ctx.invoked_subcommand is not None:
        return
    from vigil.jobs.runtime import configure_prefect, load_runtime

    rt = load_runtime(params_file)
    configure_prefect(rt.settings)
    _setup_logging(rt.settings.log_level)
    from flows.train import train_flow

    _print_candidate(train_flow(str(params_file) if params_file else None, force=force))


@train_app.command("stage")
@friendly_errors
def train_stage(stage: Annotated[str, typer.Argument(help="prepare, pretrain, sft, grpo or heldout")],
                params_file: ParamsOption = None,
                progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True) -> None:
    """One stage of dvc.yaml (what `dvc repro` calls); writes build/<stage> and metrics/<stage>.json."""
    from vigil.jobs.runtime import load_runtime
    from vigil.jobs.train import run_stage

    rt = load_runtime(params_file)
    _setup_logging(rt.settings.log_level)
    result = run_stage(rt, stage, progress=progress)
    out.print(json.dumps(result, indent=2, default=str))


# ------------------------------------------------------------------------------- evaluate, gate
def _print_gate(result: dict) -> None:
    decision = result["decision"]
    verdict = decision["verdict"].upper()
    colour = "green" if verdict == "PASS" else "red"
    rules = [r for r in decision["rules"] if r["passed"] is not None]
    out.print(f"[bold {colour}]gate: {verdict}[/bold {colour}] {decision['candidate']} vs "
              f"{decision['champion'] or 'no champion (minimum levels only)'}: "
              f"{sum(r['passed'] for r in rules)}/{len(rules)} rules pass ({decision['decision_id']})")
    for rule in decision["rules"]:
        if rule["passed"] is False:
            out.print(f"  [red]failed[/red] {rule['name']}: {rule['detail']}")
    for note in decision["notes"]:
        out.print(f"  note: {note}")
    if result.get("promoted"):
        out.print(f"  {decision['candidate']} is now the champion")
    out.print(f"report: {result['report_html']}")
    out.print(f"        {result['report_md']}")
    out.print(f"compare: {result['metrics_diff']}")


@app.command()
@friendly_errors
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
    evaluator scores them unchanged. Metrics: Skyra's paired per-generator protocol, Ivy-Fake's
    accuracy and macro-F1, AP/ROC-AUC/ECE from the fake probability, FPR on reals, format
    compliance, grounding (IoU, type accuracy, J&F where masks exist), ROUGE-L, latency, slices.
    """
    from vigil.jobs.evaluate import evaluate as run_evaluation
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    _setup_logging(rt.settings.log_level)
    with progress_bar("evaluate") as report:
        result = run_evaluation(rt, model, dataset, server=server, served_model=served_model,
                                progress=lambda event, done, total: report(event, done, total))
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


@app.command("gate")
@friendly_errors
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
    _setup_logging(rt.settings.log_level)
    from flows.evaluate import evaluate_flow

    result = evaluate_flow(candidate, str(params_file) if params_file else None, champion, promote)
    _print_gate(result)
    if result["decision"]["verdict"] != "pass":
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------- flows
@flows_app.command("serve")
@friendly_errors
def flows_serve(params_file: ParamsOption = None) -> None:
    """Serve the production deployments (data plane on the crawl cron schedule) until interrupted."""
    from vigil.jobs.runtime import configure_prefect, load_runtime

    rt = load_runtime(params_file)
    configure_prefect(rt.settings)
    from prefect import serve

    from flows.deployments import build_deployments

    serve(*build_deployments(rt.params, str(params_file or rt.settings.params_file)))


if __name__ == "__main__":  # pragma: no cover
    app()
