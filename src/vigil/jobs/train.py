"""Training as DVC stages (``dvc.yaml``: prepare → pretrain → sft → grpo → heldout), and the job that
runs them (``dvc repro``) and registers the result as a candidate model version.

Each stage function reads the runtime (settings + params) and fixed paths under ``build/`` and
``metrics/`` relative to the project folder, so the same call runs from ``dvc repro``, the CLI,
a Prefect worker or a test.

One training per workspace at a time: :func:`train` (and each of :func:`repro` and
:func:`register_candidate`, which the train flow calls as separate tasks) holds the workspace's
``train`` lock (:mod:`vigil.io.locks`), so a second run is refused at once with
:class:`~vigil.io.locks.WorkspaceBusy` (exit 7) naming the holder instead of racing it over the DVC
project and the model registry. The stages ``dvc repro`` starts take no lock: they run as children
of the holder.

CPU threads: every stage pins torch's team to ``train.threads`` (:mod:`vigil.train.threads`: the
default, the environment it passes to the ``dvc repro`` stages, and why it matters on a shared
machine).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from vigil.config.errors import VigilError
from vigil.core.model_version import ModelVersion
from vigil.io.locks import workspace_lock
from vigil.jobs.runtime import Runtime

log = logging.getLogger(__name__)

BUILD = Path("build")
METRICS = Path("metrics")
STAGES = ("prepare", "pretrain", "sft", "grpo", "heldout")
LOCK_NAME = "train"


class TrainError(VigilError):
    """A training stage or the pipeline failed; the message says which and what to do."""


def _paths(project: Path) -> dict[str, Path]:
    build = project / BUILD
    return {"prepare": build / "prepare", "pretrain": build / "pretrain", "sft": build / "sft",
            "grpo": build / "grpo", "checkpoints": build / "checkpoints", "metrics": project / METRICS}


def _store_prefix(project: Path) -> str:
    info = json.loads((_paths(project)["prepare"] / "dataset.json").read_text())
    return f"checkpoints/{info['tag']}"


def run_stage(rt: Runtime, stage: str, project: str | Path = ".", *, progress: bool = True) -> dict[str, Any]:
    """Run one stage of dvc.yaml; returns its metrics (or, for prepare, the dataset it resolved)."""
    from vigil.models.compat import ensure_transformers_compat
    from vigil.train.threads import pin_threads

    if stage not in STAGES:
        raise TrainError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    pin_threads(rt.params.train.threads)  # before the first torch import: the spin count reaches it then
    ensure_transformers_compat()
    project = Path(project)
    p = _paths(project)
    profile, train = rt.params.model.active, rt.params.train
    if stage == "prepare":
        from vigil.train.prepare import prepare

        return prepare(rt.workspace, rt.store, train.dataset, p["prepare"])
    if stage == "pretrain":
        from vigil.models.profile import build_base
        from vigil.train.pretrain import render_pretrain_data, run_pretrain

        if not profile.vision_pretrain:
            import shutil

            shutil.rmtree(p["pretrain"], ignore_errors=True)
            build_base(profile, p["pretrain"])
            metrics = {"skipped": True, "reason": "the profile's vision tower is pretrained (vision_pretrain: false)"}
            from vigil.train.runlog import write_metrics

            write_metrics(p["metrics"] / "pretrain.json", metrics)
            return metrics
        data = render_pretrain_data(rt.params.zoo, train.pretrain, profile, rt.workspace / "cache", seed=train.seed)
        base = build_base(profile, p["checkpoints"] / "pretrain-base")
        return run_pretrain(base, data, train.pretrain, profile, p["pretrain"], p["checkpoints"] / "pretrain",
                            p["metrics"], seed=train.seed, store=rt.store,
                            store_prefix=_store_prefix(project), progress=progress)
    from vigil.train.prepare import read_samples, shuffle_labels

    samples = read_samples(p["prepare"], ("train",))
    if train.shuffle_labels:
        log.warning("train.shuffle_labels is on: training a negative control that can learn nothing")
        samples = shuffle_labels(samples, train.seed)
    if stage == "sft":
        from vigil.train.trl_stages import run_sft

        return run_sft(p["pretrain"], p["prepare"], samples, train.sft, profile, p["sft"], p["checkpoints"] / "sft",
                       p["metrics"], seed=train.seed, store=rt.store,
                       store_prefix=f"{_store_prefix(project)}/sft", progress=progress)
    if stage == "grpo":
        from vigil.train.trl_stages import run_grpo

        return run_grpo(p["sft"], p["prepare"], samples, train.grpo, profile, p["grpo"], p["checkpoints"] / "grpo",
                        p["metrics"], seed=train.seed, store=rt.store,
                        store_prefix=f"{_store_prefix(project)}/grpo", progress=progress)
    from vigil.train.heldout import evaluate_heldout, heldout_clips
    from vigil.train.runlog import write_metrics

    clips = heldout_clips(rt.params.zoo, train.heldout, profile, rt.workspace / "cache")
    metrics = {name: evaluate_heldout(p[name], clips, profile, train.heldout, rt.params.zoo.fps, progress=progress)
               for name in ("sft", "grpo")}
    metrics["grpo_minus_sft"] = round(metrics["grpo"]["paired_balanced_accuracy"]
                                      - metrics["sft"]["paired_balanced_accuracy"], 4)
    write_metrics(p["metrics"] / "heldout.json", metrics)
    return metrics


def project_dir(start: str | Path = ".") -> Path:
    """The folder holding dvc.yaml (the source checkout), searching upwards."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / ".dvc").is_dir():
            return folder
    raise TrainError(f"no dvc.yaml with a .dvc folder in {here} or above: run training from the Vigil checkout")


def _check_project_params(rt: Runtime, project: Path, when: str) -> None:
    """DVC decides what to re-run from the project's params.yaml; the stages train with the run's
    snapshot. The two must be the same parameters, or dvc.lock would record values no model saw."""
    from vigil.config.params import load_params, params_snapshot

    file_hash = params_snapshot(load_params(project / "params.yaml"))[1]
    if file_hash != rt.params_hash:
        raise TrainError(f"{project / 'params.yaml'} {when} differs from this run's parameters "
                         f"(snapshot {rt.params_hash[:12]}, file {file_hash[:12]}): DVC tracks that file, so train "
                         "with it (`vigil train` without --params, or VIGIL_PARAMS_FILE pointing at it)"
                         + ("" if when == "before training" else "; then run `vigil train --force`"))


def repro(rt: Runtime, project: str | Path, *, force: bool = False, wait_s: float = 0.0) -> None:
    """``dvc repro`` of the training stages, streaming its output; the venv's tools first on PATH.

    Every stage loads the run's parameter snapshot (``VIGIL_PARAMS_SNAPSHOT``), not the file, and
    trains on ``train.threads`` CPU threads (passed as ``OMP_NUM_THREADS`` and friends: DVC starts
    each stage as a new process). Holds the workspace's ``train`` lock (waits up to ``wait_s``)."""
    from vigil.jobs.runtime import PARAMS_SNAPSHOT_ENV
    from vigil.train.threads import thread_env

    project = Path(project)
    with workspace_lock(rt.workspace, LOCK_NAME, wait_s=wait_s):
        _check_project_params(rt, project, "before training")
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env[PARAMS_SNAPSHOT_ENV] = rt.params_hash
        env.update(thread_env(rt.params.train.threads, env))
        cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else []), "heldout"]
        log.info("running %s in %s (%s torch threads)", " ".join(cmd[1:]), project, env["OMP_NUM_THREADS"])
        done = subprocess.run(cmd, cwd=project, env=env)
        if done.returncode:
            raise TrainError(f"`dvc repro` failed (exit {done.returncode}); its output above names the stage. "
                             "Run it again to resume from the last checkpoint.")
        _check_project_params(rt, project, "changed during training and")


def collect_metrics(project: str | Path) -> dict[str, Any]:
    folder = _paths(Path(project))["metrics"]
    return {stage: json.loads((folder / f"{stage}.json").read_text())
            for stage in ("pretrain", "sft", "grpo", "heldout") if (folder / f"{stage}.json").is_file()}


def register_candidate(rt: Runtime, project: str | Path = ".", *, wait_s: float = 0.0) -> ModelVersion:
    """Upload the GRPO model and register it as a candidate model version, with a ledger event.

    Safe to re-run: the version id is the weights' hash, so the same weights register once, and a
    registration killed between its record and its ledger event gets the event on the next run
    (:func:`vigil.io.models.publish_model_version`). Holds the workspace's ``train`` lock."""
    from vigil.io.models import publish_model_version

    project = Path(project)
    p = _paths(project)
    with workspace_lock(rt.workspace, LOCK_NAME, wait_s=wait_s):
        dataset = json.loads((p["prepare"] / "dataset.json").read_text())
        profile = rt.params.model.active
        return publish_model_version(
            rt.store, rt.ledger, p["grpo"], base=profile.base or "vigil-tiny (built locally)",
            profile=rt.params.model.profile,
            params={"snapshot": rt.params_hash, "model": rt.params.model.model_dump(mode="json"),
                    "train": rt.params.train.model_dump(mode="json")},
            dataset=dataset, metrics=collect_metrics(project))


def train(rt: Runtime, project: str | Path = ".", *, force: bool = False, wait_s: float = 0.0) -> ModelVersion:
    """The whole training pipeline for ``train.dataset``, then the candidate's registration, under one
    hold of the workspace's ``train`` lock (a second training is refused before any work starts)."""
    project = project_dir(project)
    with workspace_lock(rt.workspace, LOCK_NAME, wait_s=wait_s):
        repro(rt, project, force=force)
        return register_candidate(rt, project)
