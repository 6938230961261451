"""A kill point in promotion: a process killed after the alias moved and before its ledger event; the
next promotion of the same candidate records the missing event once and moves nothing twice.
(Registration's kill points are in test_train_reliability.py, through the train job.)"""

from __future__ import annotations

from pathlib import Path

from tests.support.killpoints import run_child
from vigil.config.params import Params
from vigil.io.ledger import read_events, verify_ledger
from vigil.io.models import publish_model_version, read_alias, set_alias
from vigil.jobs.runtime import runtime_for

PROMOTE = """
from vigil.config.params import Params
from vigil.io.models import set_alias
from vigil.jobs.runtime import runtime_for
rt = runtime_for({workspace!r}, Params())
set_alias(rt.store, rt.ledger, "champion", {version!r}, reason={{"decision": "d-1"}})
"""


def _model_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(b"weights " * 64)
    (root / "config.json").write_text("{}")
    return root


def _actions(rt) -> list[str]:
    return [e.action for e in read_events(rt.ledger.store)]


def test_promotion_killed_before_its_event_is_recorded_by_the_rerun(tmp_path):
    # given a registered model and a promotion SIGKILLed after the alias moved, before its event
    rt = runtime_for(tmp_path / "ws", Params())
    version = publish_model_version(rt.store, rt.ledger, _model_dir(tmp_path / "model"), base="tiny",
                                    profile="tiny", params={}, dataset={"tag": "ds-0001"}, metrics={})
    code = PROMOTE.format(workspace=str(tmp_path / "ws"), version=version.version_id)
    child = run_child(code, kill_at="vigil.io.models:_record_alias_move", when="before")
    assert child.killed, child.stderr
    assert read_alias(rt.store, "champion") == version.version_id
    assert "model.alias.champion" not in _actions(rt)
    # when the gate promotes the same candidate again, twice
    moved = [set_alias(rt.store, rt.ledger, "champion", version.version_id, reason={"decision": "d-1"})
             for _ in range(2)]
    # then nothing moves, and the lost move is in the ledger exactly once with its reason
    assert moved == [False, False]
    events = [e for e in read_events(rt.ledger.store) if e.action == "model.alias.champion"]
    assert len(events) == 1
    assert events[0].outputs["model_version"] == version.version_id and events[0].inputs["decision"] == "d-1"
    assert verify_ledger(rt.ledger.store).ok


def test_an_uninterrupted_promotion_records_one_event(tmp_path):
    rt = runtime_for(tmp_path / "ws", Params())
    version = publish_model_version(rt.store, rt.ledger, _model_dir(tmp_path / "model"), base="tiny",
                                    profile="tiny", params={}, dataset={"tag": "ds-0001"}, metrics={})
    assert set_alias(rt.store, rt.ledger, "champion", version.version_id, reason={"decision": "d-1"}) is True
    assert set_alias(rt.store, rt.ledger, "champion", version.version_id, reason={"decision": "d-2"}) is False
    assert _actions(rt).count("model.alias.champion") == 1
