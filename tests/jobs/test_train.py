"""Training: the pretrain stage learns and resumes; the DVC pipeline trains SFT then GRPO on a
labelled version, registers a candidate, is up to date on a re-run, and resumes a killed stage; a
second training on the same workspace is refused.

Every process here trains on one torch thread (tests/support/pin_threads.py): on a busy 2-core
machine the default team's spinning threads made a pretrain step 20x slower, and the end-to-end
tests below (budgeted for that machine with room to spare) used to run past their timeout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.workspaces import REPO, small_doc  # the labelled_workspace fixture is in conftest
from vigil.config.params import parse_params

VIGIL = [sys.executable, "-m", "vigil.cli"]


def test_pretrain_steps_change_the_tower_and_a_rerun_resumes(tmp_path):
    import torch

    from vigil.models.profile import build_base
    from vigil.train.pretrain import render_pretrain_data, run_pretrain

    # given a few rendered zoo pairs and the tiny base model
    params = parse_params(small_doc())
    profile, pre = params.model.active, params.train.pretrain
    data = render_pretrain_data(params.zoo, pre, profile, tmp_path / "cache")
    assert data.targets.any() and set(data.label.tolist()) == {0, 1}
    base = build_base(profile, tmp_path / "base")
    before = {k: v.clone() for k, v in _tower(base).items()}
    # when the stage trains 4 steps (checkpoint at step 2)
    metrics = run_pretrain(base, data, pre, profile, tmp_path / "out", tmp_path / "ckpt", tmp_path / "metrics",
                           progress=False)
    # then the tower's weights moved, the head and the processor were saved, metrics were written
    after = _tower(tmp_path / "out")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (tmp_path / "out" / "token_head.pt").is_file() and (tmp_path / "out" / "frame_pairs.py").is_file()
    assert metrics["steps"] == 4 and metrics["resumed_from_step"] == 0
    assert [int(r["step"]) for r in _csv(tmp_path / "metrics" / "pretrain_log.csv")] == [1, 2, 3, 4]
    # and a re-run with the same inputs resumes from the step-2 checkpoint instead of starting over
    again = run_pretrain(base, data, pre, profile, tmp_path / "out2", tmp_path / "ckpt", tmp_path / "metrics",
                         progress=False)
    assert again["resumed_from_step"] == 2
    assert [int(r["step"]) for r in _csv(tmp_path / "metrics" / "pretrain_log.csv")] == [1, 2, 3, 4]


def test_pretrain_clips_are_rendered_once_whatever_the_gallery_size_or_seed(tmp_path):
    from vigil.train.pretrain import render_pretrain_data

    # given the pretrain clips rendered once for a small gallery
    params = parse_params(small_doc())
    pre, profile = params.train.pretrain, params.model.active
    first = render_pretrain_data(params.zoo, pre, profile, tmp_path / "cache")
    cached = sorted((tmp_path / "cache").iterdir())
    # when the gallery grows and changes seed (the pretrain clips come from their own seeds)
    bigger = params.zoo.model_copy(update={"pairs_per_generator": 50, "seed": params.zoo.seed + 1})
    again = render_pretrain_data(bigger, pre, profile, tmp_path / "cache")
    # then the cache answers: no second file, the same clips
    assert sorted((tmp_path / "cache").iterdir()) == cached
    assert (again.frames == first.frames).all() and (again.label == first.label).all()
    # and a change the render does read (the frame rate) renders anew
    render_pretrain_data(params.zoo.model_copy(update={"fps": params.zoo.fps * 2}), pre, profile, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == len(cached) + 1


def _tower(model_dir):
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(str(Path(model_dir) / "model.safetensors")).items() if ".visual." in k
            or k.startswith("visual.") or "visual" in k}


def _csv(path):
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))


def _project(tmp_path: Path, doc: dict) -> Path:
    """A copy of the checkout's DVC project (dvc.yaml, params, sources the stages depend on)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "dvc.yaml", project)
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / ".gitignore", project)
    (project / "params.yaml").write_text(yaml.safe_dump(doc))
    # a git checkout like the user's: DVC refuses files the project's .gitignore hides (dvc.lock)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=project, check=True)
    return project


def _env(workspace: Path, project: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env.update(VIGIL_WORKSPACE=str(workspace), VIGIL_PARAMS_FILE=str(project / "params.yaml"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_train_command_runs_every_stage_registers_a_candidate_and_is_then_up_to_date(labelled_workspace, tmp_path):
    workspace = tmp_path / "ws"
    shutil.copytree(labelled_workspace, workspace, symlinks=True)
    project = _project(tmp_path, small_doc())
    env = _env(workspace, project)
    # when a user runs the training command in the project
    run = subprocess.run([*VIGIL, "train"], cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    # then each stage wrote its model and metrics, and the candidate was registered with a ledger event
    for stage in ("pretrain", "sft", "grpo"):
        assert (project / "build" / stage / "config.json").is_file()
        assert json.loads((project / "metrics" / f"{stage}.json").read_text())["steps"] > 0
    grpo_rows = _csv(project / "metrics" / "grpo_log.csv")
    assert grpo_rows and {"reward_mean", "reward_std", "kl", "step_s"} <= set(grpo_rows[0])
    heldout = json.loads((project / "metrics" / "heldout.json").read_text())
    assert 0.0 <= heldout["grpo"]["paired_balanced_accuracy"] <= 1.0 and heldout["grpo"]["clips"] == 12
    records = list((workspace / "store" / "vigil" / "models").glob("mv-*/model_version.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["dataset"]["tag"] == "ds-0002" and record["profile"] == "tiny"
    assert set(record["metrics"]) == {"pretrain", "sft", "grpo", "heldout"}
    assert record["version_id"] in run.stdout
    from vigil.io.ledger import read_events
    from vigil.io.store import LocalStore

    events = read_events(LocalStore(workspace / "store"))
    assert events[-1].action == "model.candidate" and events[-1].outputs["model_version"] == record["version_id"]
    # and SFT changed the language model's weights but not the frozen tower; GRPO ran its steps
    # (its weights move only when a group's rewards differ, which a 4-step SFT model rarely earns)
    assert _differs(project / "build" / "pretrain", project / "build" / "sft", tower=False)
    assert not _differs(project / "build" / "pretrain", project / "build" / "sft", tower=True)
    assert json.loads((project / "metrics" / "grpo.json").read_text())["steps"] == 2 and len(grpo_rows) == 2
    # and checkpoints went to the store
    assert list((workspace / "store" / "vigil" / "checkpoints" / "ds-0002" / "sft").glob("checkpoint-*/*"))
    # when `dvc repro` runs again with nothing changed, no training stage runs
    again = subprocess.run([sys.executable, "-m", "dvc", "repro", "heldout"], cwd=project, env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "Running stage 'sft'" not in again.stdout and "Running stage 'prepare'" in again.stdout


def _differs(a: Path, b: Path, *, tower: bool) -> bool:
    import torch
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return any(not torch.equal(wa[k], wb[k]) for k in wa if ("visual" in k) == tower)


SFT_STEPS = 16  # enough to kill it between checkpoints, few enough to finish quickly on one thread


@pytest.mark.slow
@pytest.mark.timeout(1800)  # four stage processes; on a loaded machine each may take minutes
def test_killed_sft_resumes_from_its_last_checkpoint(labelled_workspace, tmp_path):
    workspace = tmp_path / "ws"
    shutil.copytree(labelled_workspace, workspace, symlinks=True)
    project = _project(tmp_path, small_doc(sft={"max_steps": SFT_STEPS, "checkpoint_every": 2}))
    env = _env(workspace, project)
    for stage in ("prepare", "pretrain"):
        done = subprocess.run([*VIGIL, "train", "stage", stage, "--no-progress"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    # given an SFT run killed once it has written a checkpoint
    proc = subprocess.Popen([*VIGIL, "train", "stage", "sft", "--no-progress"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = project / "build" / "checkpoints" / "sft"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not _sft_checkpoints(checkpoints):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = max(_sft_checkpoints(checkpoints), default=0)
    assert 0 < saved < SFT_STEPS, f"killed at checkpoint {saved} of {SFT_STEPS} steps"
    # when the stage runs again
    done = subprocess.run([*VIGIL, "train", "stage", "sft", "--no-progress"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # then it resumed from that checkpoint and finished the planned steps
    metrics = json.loads((project / "metrics" / "sft.json").read_text())
    assert metrics["resumed_from_step"] >= saved and metrics["steps"] == SFT_STEPS
    steps = [int(r["step"]) for r in _csv(project / "metrics" / "sft_log.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == SFT_STEPS


def _sft_checkpoints(folder: Path) -> list[int]:
    """Steps of the SFT checkpoints written to the end (the trainer state is their last file)."""
    return [int(p.parent.name.split("-")[1]) for p in folder.glob("checkpoint-*/trainer_state.json")]


_HOLD_LOCK = """
import sys
from vigil.io.locks import workspace_lock
with workspace_lock(sys.argv[1], "train"):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("entry", ["train", "repro", "register_candidate"])
def test_a_second_training_on_the_workspace_is_refused_naming_the_first(entry, tmp_path, monkeypatch):
    import vigil.jobs.train as job
    from vigil.io.locks import WorkspaceBusy
    from vigil.jobs.runtime import runtime_for

    # given a DVC project, and a workspace whose train lock another process holds
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    workspace = tmp_path / "ws"
    rt = runtime_for(workspace, parse_params(small_doc()))
    started = []
    monkeypatch.setattr(job.subprocess, "run", lambda *a, **kw: started.append(a))
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(workspace)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        # when a training (or either half the train flow runs as its own task) starts on that workspace
        # then it is refused at once, naming the holder, before DVC or the registry is touched
        with pytest.raises(WorkspaceBusy, match=f"another train run .*pid {holder.pid}"):
            getattr(job, entry)(rt, project)
        assert not started and not list((workspace / "store").glob("vigil/models/*"))
    finally:
        holder.kill()
        holder.wait()


def test_training_datasets_hold_the_clip_images_losslessly_in_sample_order(tmp_path):
    import numpy as np
    from PIL import Image

    from vigil.models.inputs import clip_images, load_clip
    from vigil.train.prepare import TrainingSample
    from vigil.train.trl_stages import grpo_dataset, sft_dataset

    # given three prepared clips in Skyra's layout, each with its own noisy frames
    profile = parse_params(small_doc()).model.active
    rng = np.random.default_rng(0)
    samples = []
    for k in range(3):
        folder = tmp_path / "frames" / f"s{k}"
        folder.mkdir(parents=True)
        for i in range(1, 5):
            Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        (folder / "timestamps.txt").write_text("0.0\n0.25\n0.5\n0.75\n")
        samples.append(TrainingSample(f"s{k}", "train", ("real", "fake")[k % 2], "g", f"p{k}", 1.0, f"frames/s{k}",
                                      "<answer>Real</answer>", []))
    # when the SFT and GRPO datasets are built from them
    sft = sft_dataset(samples, [f"target {k}" for k in range(3)], tmp_path, profile)
    grpo = grpo_dataset(samples, tmp_path, profile)
    # then every row has its own sample's images, pixel for pixel, decoded as PIL images, and its own target
    for k, sample in enumerate(samples):
        expected, _ = clip_images(load_clip(tmp_path / sample.frames_dir, profile.max_frames), profile.frame_pairs)
        for dataset in (sft, grpo):
            images = dataset[k]["images"]
            assert all(isinstance(im, Image.Image) for im in images)
            assert len(images) == len(expected)
            assert all(np.array_equal(np.asarray(im.convert("RGB")), want) for im, want in zip(images, expected))
        assert sft[k]["completion"][0]["content"][0]["text"] == f"target {k}"
        assert grpo[k]["label"] == sample.label


def test_params_refuse_a_held_out_seed_that_is_trained_on():
    from vigil.config.errors import ConfigError

    doc = small_doc(heldout={"zoo_seed": 101})
    with pytest.raises(ConfigError, match="also a pretrain seed"):
        parse_params(doc)
    doc = small_doc(heldout={"zoo_seed": yaml.safe_load((REPO / "params.yaml").read_text())["zoo"]["seed"]})
    with pytest.raises(ConfigError, match="gallery's zoo.seed"):
        parse_params(doc)


def test_prepare_names_a_missing_or_unlabelled_version(labelled_workspace, tmp_path):
    from vigil.io.registry import RegistryError
    from vigil.io.store import LocalStore
    from vigil.train.prepare import prepare

    store = LocalStore(labelled_workspace / "store")
    # ds-0001 is the ingested (unlabelled) version; ds-0099 does not exist
    with pytest.raises(RegistryError, match="ds-0001 has no annotations.parquet"):
        prepare(labelled_workspace, store, "ds-0001", tmp_path / "out")
    with pytest.raises(RegistryError, match="ds-0099"):
        prepare(labelled_workspace, store, "ds-0099", tmp_path / "out")
    # an empty workspace says what to run first
    with pytest.raises(RegistryError, match="vigil run"):
        prepare(tmp_path / "empty", LocalStore(tmp_path / "empty" / "store"), "latest", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_stage_exits_with_a_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env["VIGIL_WORKSPACE"] = str(tmp_path / "ws")
    done = subprocess.run([*VIGIL, "train", "stage", "nonsense"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 4 and "unknown stage 'nonsense'" in done.stderr


def test_unknown_reward_name_is_refused_before_training(labelled_workspace, tmp_path):
    from vigil.train.trl_stages import run_grpo

    params = parse_params(small_doc(grpo={"rewards": {"skyra": 1.0, "sykra": 0.5}}))
    with pytest.raises(ValueError, match="unknown reward functions \\['sykra'\\]"):
        run_grpo(tmp_path, tmp_path, [], params.train.grpo, params.model.active, tmp_path / "o", tmp_path / "c",
                 tmp_path / "m")


def test_grpo_warns_when_completions_would_be_cut_before_the_answer(tiny_model_dir, caplog):
    from vigil.models.profile import load_processor
    from vigil.train.trl_stages import _warn_if_cut

    processor = load_processor(tiny_model_dir)
    targets = ["<think>" + "the ball sinks through the floor " * 20 + "</think><answer>Fake</answer>"]
    _warn_if_cut(processor, targets, 512)
    assert "max_completion_length" not in caplog.text
    _warn_if_cut(processor, targets, 16)
    assert "max_completion_length 16" in caplog.text


def test_decision_offset_points_at_the_token_that_tells_fake_from_real(tiny_model_dir):
    from vigil.core import grammar
    from vigil.models.profile import load_processor
    from vigil.train.trl_stages import decision_offset

    tokenizer = load_processor(tiny_model_dir).tokenizer
    offset = decision_offset(tokenizer)
    # given a condensed fake and a condensed real explanation
    fake = grammar.condense("<think>Melts <type>Shape Distortion</type> in <t>[0.25, 1.5]</t> at "
                            "<bbox>[0.1, 0.1, 0.5, 0.6]</bbox>.</think><answer>Fake</answer>")
    real = grammar.condense("<think>Calm <t>[0.5, 1.75]</t> at <bbox>[0.2, 0.3, 0.4, 0.9]</bbox>.</think>"
                            "<answer>Real</answer>")
    fake_ids, real_ids = (tokenizer(t, add_special_tokens=False).input_ids for t in (fake, real))
    # then they agree before the offset and differ at it
    assert fake_ids[:offset] == real_ids[:offset] and fake_ids[offset] != real_ids[offset]


def test_decision_weights_weigh_the_token_offset_places_into_each_completion():
    import torch

    from vigil.train.trl_stages import decision_weights

    # given two rows whose completions start at different places (prompt and padding are masked out)
    mask = torch.tensor([[0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    # when the token one place into each completion weighs 5
    weights = decision_weights(mask, 1, 5.0)
    # then it counts five times, every other completion token once, and masked tokens (and a row
    # with no completion at all) not at all
    assert weights.tolist() == [[0, 1, 5, 1, 1, 0], [1, 5, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]]
    assert decision_weights(mask, 1, 1.0).tolist() == mask.float().tolist()


def test_decision_weight_needs_the_evidence_target():
    doc = small_doc()
    from vigil.config.errors import ConfigError

    doc["model"]["profiles"]["tiny"].update(sft_target="explanation", decision_weight=10)
    with pytest.raises(ConfigError, match="decision_weight needs sft_target: evidence"):
        parse_params(doc)


def test_lora_profile_trains_adapters_and_saves_one_merged_model(labelled_workspace, tmp_path):
    import torch
    from safetensors.torch import load_file

    from vigil.config.params import LoraParams
    from vigil.io.store import LocalStore
    from vigil.models.profile import build_base
    from vigil.train.prepare import prepare, read_samples
    from vigil.train.trl_stages import run_sft

    # given the production profile's way of training (LoRA on the language model, gradient
    # checkpointing, frozen tower) on the tiny model, and a prepared labelled version
    workspace = tmp_path / "ws"
    shutil.copytree(labelled_workspace, workspace, symlinks=True)
    prepare(workspace, LocalStore(workspace / "store"), "latest", tmp_path / "prep")
    params = parse_params(small_doc(sft={"max_steps": 2, "batch_size": 2, "checkpoint_every": 2}))
    profile = params.model.active.model_copy(update={"finetune": "lora", "lora": LoraParams(r=4, alpha=8),
                                                     "gradient_checkpointing": True})
    base = build_base(profile, tmp_path / "base")
    # when SFT runs two steps
    metrics = run_sft(base, tmp_path / "prep", read_samples(tmp_path / "prep", ("train",)), params.train.sft, profile,
                      tmp_path / "out", tmp_path / "ckpt", tmp_path / "metrics", progress=False)
    # then one plain model was saved (adapters merged, none left beside it): the adapted projections of
    # the language model moved, while the tower and the embeddings are the base's
    assert metrics["steps"] == 2
    assert not list((tmp_path / "out").glob("adapter_*"))
    before, after = load_file(base / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert {k.split(".")[-2] for k in changed} == set(profile.lora.target_modules)
    assert not any("visual" in k or "embed_tokens" in k or "lm_head" in k for k in changed)


def _label_only_workspace(labelled_workspace, tmp_path, n: int = 3) -> tuple[Path, set[str]]:
    """A copy of the labelled workspace whose ``n`` training fakes lost their ground truth (crawled from a
    real generator: a label, no artifacts) and were annotated again: label-only annotations."""
    from vigil.config.params import parse_params
    from vigil.io.registry import latest_version, open_registry, read_manifest_at
    from vigil.io.store import LocalStore
    from vigil.jobs.annotate import annotate
    from vigil.jobs.runtime import runtime_for

    workspace = tmp_path / "ws"
    shutil.copytree(labelled_workspace, workspace, symlinks=True)
    store = LocalStore(workspace / "store")
    registry = open_registry(workspace / "registry", store)
    manifest = read_manifest_at(registry, latest_version(registry).tag)
    fakes = set(sorted(manifest.loc[(manifest["label"] == "fake") & (manifest["split"] == "train"), "sample_id"])[:n])
    assert len(fakes) == n
    for key in store.list_keys("provenance/"):
        record = store.get_json(key)
        if record.get("sha256") in fakes:
            store.put_json(key, record | {"artifacts": [], "mask_key": None})
    for sample_id in fakes:  # their grounded records go: the zoo no longer knows their artifacts
        shutil.rmtree(store.base / "annotations" / sample_id[:2] / sample_id)
    report = annotate(runtime_for(workspace, parse_params(small_doc()), store))
    assert report.status == "published" and report.n_label_only == n, report.summary()
    return workspace, fakes


def test_training_stages_run_on_a_labelled_version_with_label_only_annotations(labelled_workspace, tmp_path):
    from vigil.jobs.runtime import runtime_for
    from vigil.jobs.train import run_stage
    from vigil.models.profile import build_base
    from vigil.train.prepare import read_samples

    # given a labelled version where three training fakes are label-only, and the tiny base model
    workspace, label_only = _label_only_workspace(labelled_workspace, tmp_path)
    project = tmp_path / "project"
    small = {"max_steps": 2, "batch_size": 2, "checkpoint_every": 2}
    rt = runtime_for(workspace, parse_params(small_doc(sft=small, grpo={**small, "num_generations": 2})))
    # when the prepare stage resolves it
    info = run_stage(rt, "prepare", project, progress=False)
    # then the label-only samples are there, flagged, with no truth for the grounding reward
    samples = {s.sample_id: s for s in read_samples(project / "build" / "prepare")}
    assert info["tag"] == "ds-0003" and info["n_label_only"] == 3
    assert {sid for sid, s in samples.items() if s.label_only} == label_only
    assert all(samples[sid].truth is None and samples[sid].label == "fake" for sid in label_only)
    # and SFT (default: label-only samples left out) then GRPO (which uses them) train on it
    build_base(rt.params.model.active, project / "build" / "pretrain")
    sft = run_stage(rt, "sft", project, progress=False)
    n_train = sum(s.split == "train" for s in samples.values())
    assert sft["steps"] == 2 and sft["label_only_samples"] == {"seen": 3, "trained": 0}
    assert sft["train_samples"] == n_train - 3
    grpo = run_stage(rt, "grpo", project, progress=False)
    assert grpo["steps"] == 2 and (project / "build" / "grpo" / "model.safetensors").is_file()


def test_sft_keeps_label_only_samples_with_their_verdict_target_when_asked():
    from vigil.config.errors import ConfigError
    from vigil.train.prepare import TrainingSample
    from vigil.train.trl_stages import completion_target, sft_samples

    profile = parse_params(small_doc()).model.active
    lo = TrainingSample("a" * 64, "train", "fake", "g", None, 2.0, "frames/a",
                        "<think>No artifact was localised in this clip.</think>\n<answer>Fake</answer>", None, True)
    real = "<think>Calm <t>[0, 1]</t> at <bbox>[0, 0, 1, 1]</bbox>.</think><answer>Real</answer>"
    grounded = TrainingSample("b" * 64, "train", "real", "real", None, 2.0, "frames/b", real, [])
    # given the setting 'verdict': label-only samples stay in SFT, their target the verdict with no evidence
    assert [s.sample_id for s in sft_samples([lo, grounded], "verdict")] == [lo.sample_id, grounded.sample_id]
    assert completion_target(lo, profile) == "<think></think>\n<answer>Fake</answer>"
    # and 'skip' (the default) leaves them out
    assert parse_params(small_doc()).train.sft.label_only == "skip"
    assert sft_samples([lo, grounded], "skip") == [grounded]
    # and anything else is refused naming the setting
    with pytest.raises(ConfigError, match="label_only"):
        parse_params(small_doc(sft={"label_only": "sometimes"}))
