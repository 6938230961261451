"""Kill points in the train job's registration (:func:`vigil.jobs.train.register_candidate`): a run
SIGKILLed after the weights are stored, before the record or before its ledger event, leaves no
stale lock, and the rerun registers exactly one model version with exactly one ledger event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.killpoints import run_child
from tests.support.workspaces import small_doc
from vigil.config.params import load_params
from vigil.io.ledger import read_events, verify_ledger
from vigil.jobs.runtime import runtime_for

REGISTER = """
from vigil.config.params import load_params
from vigil.jobs.runtime import runtime_for
from vigil.jobs.train import register_candidate
rt = runtime_for({workspace!r}, load_params({params!r}))
print(register_candidate(rt, {project!r}).version_id)
"""


def _project(root: Path) -> Path:
    """A trained project as `dvc repro` leaves it: the prepared dataset, the GRPO model, the metrics."""
    (root / "build" / "prepare").mkdir(parents=True)
    (root / "build" / "prepare" / "dataset.json").write_text(json.dumps({"tag": "ds-0002", "n_samples": 12}))
    grpo = root / "build" / "grpo"
    grpo.mkdir()
    (grpo / "model.safetensors").write_bytes(b"grpo weights " * 256)
    (grpo / "config.json").write_text("{}")
    (root / "metrics").mkdir()
    (root / "metrics" / "grpo.json").write_text(json.dumps({"steps": 2}))
    (root / "params.yaml").write_text(yaml.safe_dump(small_doc()))
    return root


def _records(rt) -> list[str]:
    return [k for k in rt.store.list_keys("models/") if k.endswith("/model_version.json")]


@pytest.mark.parametrize(("kill_at", "records_left"), [("vigil.io.store:ObjectStore.put_json", 0),
                                                       ("vigil.io.ledger:Ledger.append", 1)],
                         ids=["before-the-record", "before-the-event"])
def test_killed_registration_reruns_into_one_version_and_one_event(kill_at, records_left, tmp_path):
    from vigil.jobs.train import register_candidate

    # given a registration SIGKILLed once the weights are in the store
    project, workspace = _project(tmp_path / "project"), tmp_path / "ws"
    code = REGISTER.format(workspace=str(workspace), params=str(project / "params.yaml"), project=str(project))
    child = run_child(code, kill_at=kill_at, when="before", timeout_s=300)
    assert child.killed, child.stderr[-3000:]
    rt = runtime_for(workspace, load_params(project / "params.yaml"))
    assert [k for k in rt.store.list_keys("models/") if k.endswith("/model.safetensors")]  # the weights
    assert len(_records(rt)) == records_left
    assert not [e for e in read_events(rt.ledger.store) if e.action == "model.candidate"]
    # when the job registers again, twice (a retried task, then a user's rerun)
    first = register_candidate(rt, project)
    again = register_candidate(rt, project)
    # then one model version with the project's dataset and metrics, and one registration event naming it
    assert first.version_id == again.version_id
    assert first.dataset["tag"] == "ds-0002" and first.metrics["grpo"] == {"steps": 2}
    assert _records(rt) == [f"models/{first.version_id}/model_version.json"]
    events = [e for e in read_events(rt.ledger.store) if e.action == "model.candidate"]
    assert [e.outputs["model_version"] for e in events] == [first.version_id]
    assert verify_ledger(rt.ledger.store).ok
