"""`vigil evaluate` and the gate as a user runs them: registered tiny models, the fixed zoo set and the
recent slice of a labelled version, predictions in Skyra's layout, the evaluate flow's decision in the
store and the ledger, the champion alias, the report and `dvc metrics diff`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.workspaces import small_doc

VIGIL = [sys.executable, "-m", "vigil.cli"]
SKYRA_KEYS = {"video_id", "aigc_model_name", "mllm_model_name", "gt", "response", "answer"}


def _doc() -> dict:
    doc = small_doc()
    doc["evaluate"].update(max_new_tokens=24, batch_size=12, report_examples=2)
    # random-weight models answer nothing parsable: a floor they can pass, so the pass path runs too
    doc["gate"].update(bootstrap_samples=200, fixed={"min": {"accuracy": 0.0}, "min_improvement": 0.0,
                                                     "max_generator_regression": 0.1})
    return doc


@pytest.fixture(scope="module")
def workspace(labelled_workspace, tmp_path_factory, tiny_model_dir):
    """A copy of the labelled workspace with two registered tiny models (random weights, two seeds)."""
    from vigil.config.params import parse_params
    from vigil.io.ledger import Ledger
    from vigil.io.models import publish_model_version
    from vigil.io.store import LocalStore
    from vigil.models.tiny import TinyModelConfig, build_tiny_model

    root = tmp_path_factory.mktemp("eval") / "ws"
    shutil.copytree(labelled_workspace, root, symlinks=True)
    params_file = root.parent / "params.yaml"
    params_file.write_text(yaml.safe_dump(_doc()))
    params = parse_params(_doc())
    store = LocalStore(root / "store")
    other = build_tiny_model(root.parent / "tiny-seed1", TinyModelConfig(seed=1))
    ids = []
    for folder in (tiny_model_dir, other):
        version = publish_model_version(
            store, Ledger(store), folder, base="vigil-tiny (test)", profile="tiny",
            params={"model": params.model.model_dump(mode="json"), "train": params.train.model_dump(mode="json")},
            dataset={"tag": "ds-0002"}, metrics={})
        ids.append(version.version_id)
    return root, params_file, ids


def _env(root: Path, params_file: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env.update(VIGIL_WORKSPACE=str(root), VIGIL_PARAMS_FILE=str(params_file))
    return env


@pytest.fixture
def runtime(workspace, monkeypatch):
    from vigil.jobs.runtime import load_runtime

    root, params_file, _ = workspace
    for key, value in _env(root, params_file).items():
        if key.startswith("VIGIL_"):
            monkeypatch.setenv(key, value)
    return load_runtime(params_file)


@pytest.mark.slow
def test_evaluate_writes_skyra_predictions_and_metrics_and_caches_them(workspace):
    root, params_file, (model, _) = workspace
    env = _env(root, params_file)
    # when a user evaluates a registered model on the fixed set
    run = subprocess.run([*VIGIL, "evaluate", model, "fixed"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "paired balanced accuracy" in run.stdout
    assert "Skyra eval.py (skyra_eval)" in run.stdout  # Skyra's own numbers beside Vigil's
    # then the predictions are a JSON list in Skyra's layout (plus ours), one per clip of the set
    folder = next((root / "evaluations" / model).iterdir())
    predictions = json.loads((folder / "predictions.json").read_text())
    clips = [json.loads(line) for line in next((root / "evalsets").glob("zoo-303-*/clips.jsonl")).read_text().splitlines()]
    assert len(predictions) == len(clips) >= 10
    for p in predictions:
        assert SKYRA_KEYS <= set(p) and p["answer"] in ("Real", "Fake", "Error") and p["mllm_model_name"] == model
        generator, base = p["video_id"].split("/")
        assert base == p["base_id"] and (generator == "Real") == (p["gt"] == "Real")
    # and Skyra's own index of the set is there for its inference script
    index = json.loads(next((root / "evalsets").glob("zoo-303-*/test_index.json")).read_text())
    assert set(index) >= {"Real"} and sum(map(len, index.values())) == len(clips)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["clips"] == len(clips) and metrics["evalset"]["source"]["zoo_seed"] == 303
    assert metrics["grounding"]["artifacts"] > 0 and metrics["masks"]["clips"] > 0
    # and Skyra's eval.py numbers beside Vigil's, over the same pairs Vigil's strict protocol finds
    assert metrics["skyra_eval"]["pairs"] == sum(g["pairs"] for g in metrics["skyra"]["per_generator"].values())
    assert metrics["skyra_eval"]["generators"] >= 1 and metrics["skyra_eval"]["as_printed"]["acc"] is not None
    # and the evaluation is in the ledger; a second run reuses it (no new event)
    from vigil.io.ledger import read_events
    from vigil.io.store import LocalStore

    def evaluated() -> int:
        return sum(e.action == "model.evaluated" for e in read_events(LocalStore(root / "store")))

    before = evaluated()
    assert before >= 1
    again = subprocess.run([*VIGIL, "evaluate", model, "fixed"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and evaluated() == before


@pytest.mark.parametrize("args, message", [
    (["mv-000000000000", "fixed"], "no model version mv-000000000000"),
    (["{model}", "ds-9999"], "ds-9999"),
    (["{model}", "zoo:7"], "trained on"),
    (["no/such/folder", "fixed"], "neither a model version id"),
])
def test_evaluate_names_a_bad_model_or_dataset(workspace, args, message):
    root, params_file, (model, _) = workspace
    run = subprocess.run([*VIGIL, "evaluate", *[a.format(model=model) for a in args]],
                         env=_env(root, params_file), capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and message in run.stderr + run.stdout
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_the_serving_path_answers_every_clip_in_the_same_layout(runtime, workspace, tiny_model_dir):
    from vigil.jobs.evaluate import evaluate
    from vigil.serving.openai_server import serve_openai

    # given the model behind a real OpenAI-compatible server on loopback
    with serve_openai(tiny_model_dir, startup_timeout_s=180) as server:
        # when the evaluation goes through it
        result = evaluate(runtime, str(tiny_model_dir), "fixed", server=server.base_url,
                          served_model=server.model_name)
    # then every clip got an answer with a measured latency, in the same layout
    predictions = result.predictions
    assert len(predictions) == len(result.evalset.clips)
    assert all(p.latency_s > 0 for p in predictions)
    assert all(p.fake_probability is None or 0 <= p.fake_probability <= 1 for p in predictions)
    assert result.metrics["clips"] == len(predictions)


@pytest.mark.slow
def test_the_gate_records_a_decision_moves_the_champion_on_a_pass_and_refuses_a_model_no_better(
        runtime, workspace, prefect_harness):
    from vigil.flows.evaluate import evaluate_flow
    from vigil.io.ledger import read_events, verify_ledger
    from vigil.io.models import read_alias, read_model_version

    root, params_file, (first, second) = workspace
    # when the first candidate is gated with no champion yet
    result = evaluate_flow(first, str(params_file))
    decision = result.decision
    # then it passes on minimum levels alone and becomes the champion
    assert decision.verdict == "pass" and decision.champion is None and result.promoted
    assert read_alias(runtime.store, "champion") == first
    assert read_model_version(runtime.store, first).gate["decision"] == decision.decision_id
    assert Path(result.report_html).is_file() and Path(result.report_md).is_file()
    # when a second model, no better than the champion, is gated
    refused = evaluate_flow(second, str(params_file))
    # then it is refused with the failing rule named, and the champion stays
    assert refused.decision.verdict == "fail" and refused.decision.champion == first
    assert "fixed/min_improvement" in refused.decision.failed
    assert read_alias(runtime.store, "champion") == first and not refused.promoted
    md = Path(refused.report_md).read_text()
    assert "FAIL" in md and "fixed/min_improvement" in md
    # and the decisions are in the store and the ledger, hashed, and the ledger still verifies
    events = read_events(runtime.store)
    gates = [e for e in events if e.action == "model.gate"]
    assert [g.outputs["verdict"] for g in gates[-2:]] == ["pass", "fail"]
    record = runtime.store.get_json(f"gates/{refused.decision.decision_id}.json")
    from vigil.core.hashing import sha256_json

    assert sha256_json(record) == gates[-1].outputs["record_sha256"]
    assert any(e.action == "model.alias.champion" for e in events) and verify_ledger(runtime.store).ok
    # and `dvc metrics diff` compares the two models' metric files
    command = refused.metrics_diff
    repo, diff_args = command.split(" && ")[0][3:], command.split(" && ")[1].split()[1:]
    diff = subprocess.run([sys.executable, "-m", "dvc", *diff_args], cwd=repo, capture_output=True, text=True,
                          timeout=120)
    assert diff.returncode == 0, diff.stderr
    assert "fixed.json" in diff.stdout  # latency at least differs between two models
    shown = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], cwd=repo,
                           capture_output=True, text=True, timeout=120)
    assert "accuracy" in shown.stdout
    # when the champion itself is gated again, it is judged on minimum levels and the note says why
    again = evaluate_flow(first, str(params_file))
    assert any("already the champion" in n for n in again.decision.notes)
