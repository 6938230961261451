"""``vigil train``: the training stages (``dvc repro``) and the candidate's registration."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from vigil.cli.console import interactive, out, setup_logging
from vigil.cli.errors import VigilTyper, sub_app
from vigil.cli.options import ParamsOption

train_app = sub_app("Train SFT then GRPO (dvc.yaml stages) and register a candidate model version.",
                    invoke_without_command=True, no_args_is_help=False)


def register(app: VigilTyper) -> None:
    app.add_typer(train_app, name="train")


def candidate_table(version) -> Table:
    """The candidate model version: dataset, weights, each stage's figures, the held-out check."""
    heldout = version.metrics.get("heldout", {})
    table = Table(title=f"Candidate model {version.version_id}", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("dataset", f"{version.dataset['tag']} ({version.dataset['n_samples']} samples)")
    table.add_row("weights", version.weights_uri)
    for stage in ("pretrain", "sft", "grpo"):
        m = version.metrics.get(stage, {})
        if m:
            table.add_row(stage, ", ".join(f"{k} {m[k]}" for k in ("steps", "train_s", "reward_mean", "kl",
                                                                     "holdout_auc") if k in m) or "skipped")
    for name in ("sft", "grpo"):
        if name in heldout:
            h = heldout[name]
            table.add_row(f"held-out ({name})", f"paired balanced accuracy {h['paired_balanced_accuracy']}, "
                                                f"format compliance {h['format_compliance']}, {h['clips']} clips")
    return table


@train_app.callback()
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
    setup_logging(rt.settings.log_level, rt.workspace)
    from vigil.flows.train import train_flow

    out.print(candidate_table(train_flow(params_ref=rt.params_hash, force=force)))


@train_app.command("stage")
def train_stage(stage: Annotated[str, typer.Argument(help="prepare, pretrain, sft, grpo or heldout")],
                params_file: ParamsOption = None,
                progress: Annotated[Optional[bool], typer.Option(
                    help="Show progress bars (default: when stderr is a terminal).")] = None) -> None:
    """One stage of dvc.yaml (what `dvc repro` calls); writes build/<stage> and metrics/<stage>.json.

    Inside a run it trains with the run's parameter snapshot (VIGIL_PARAMS_SNAPSHOT), not the file."""
    from vigil.jobs.runtime import load_runtime
    from vigil.jobs.train import run_stage

    rt = load_runtime(params_file)
    setup_logging(rt.settings.log_level, rt.workspace)
    result = run_stage(rt, stage, progress=interactive() if progress is None else progress)
    out.print(json.dumps(result, indent=2, default=str))
