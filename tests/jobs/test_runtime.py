"""A run loads its parameters once: the snapshot in the store is what every later step sees."""

from __future__ import annotations

import pytest
import yaml

from vigil.config.errors import ConfigError, NotFoundError
from vigil.config.params import load_params, params_snapshot
from vigil.jobs.runtime import load_runtime, params_key, runtime_for


@pytest.fixture
def user_env(tmp_path, clean_env):
    monkeypatch = clean_env
    monkeypatch.setenv("VIGIL_WORKSPACE", str(tmp_path / "ws"))
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"ingest": {"frames": 8}}))
    monkeypatch.setenv("VIGIL_PARAMS_FILE", str(params_file))
    return params_file


def test_the_snapshot_is_stored_once_by_content_and_named_by_every_ledger_event(user_env):
    # when a run starts, its parameters are stored under their own hash, defaults written out
    rt = load_runtime()
    text = rt.store.get_bytes(params_key(rt.params_hash)).decode()
    assert "frames: 8" in text and "max_side: 224" in text
    assert params_snapshot(rt.params) == (text, rt.params_hash)
    # and a second start with the same parameters (other comments, same values) reuses it
    user_env.write_text("# a comment\n" + user_env.read_text())
    assert load_runtime().params_hash == rt.params_hash
    assert len(list(rt.store.list_keys("params/"))) == 1
    # and every ledger event names it next to its own parameters
    event = rt.ledger.append("test.step", params={"k": 1})
    assert event.params == {"snapshot": rt.params_hash, "k": 1}


def test_a_later_step_sees_the_snapshot_not_an_edited_file(user_env, monkeypatch):
    # given a run that started with frames 8
    first = load_runtime()
    # when the file is edited during the run
    user_env.write_text(yaml.safe_dump({"ingest": {"frames": 32}}))
    # then a step handed the snapshot (a task's params_ref, or DVC's stages through the setting) keeps frames 8
    assert load_runtime(params_ref=first.params_hash).params.ingest.frames == 8
    monkeypatch.setenv("VIGIL_PARAMS_SNAPSHOT", first.params_hash)
    assert load_runtime().params.ingest.frames == 8
    # while a new run reads the file
    monkeypatch.delenv("VIGIL_PARAMS_SNAPSHOT")
    assert load_runtime().params.ingest.frames == 32


def test_a_snapshot_that_was_edited_or_never_stored_is_refused(user_env):
    rt = load_runtime()
    key = params_key(rt.params_hash)
    rt.store.put_bytes(key, rt.store.get_bytes(key).replace(b"frames: 8", b"frames: 9"))
    with pytest.raises(ConfigError, match="does not match its hash"):
        load_runtime(params_ref=rt.params_hash)
    with pytest.raises(NotFoundError, match="no parameter snapshot"):
        load_runtime(params_ref="0" * 64)


def test_training_refuses_parameters_that_dvc_would_not_track(tmp_path):
    from vigil.jobs.train import TrainError, _check_project_params

    # given a project whose params.yaml differs from the run's parameters
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": {"frames": 8}}))
    rt = runtime_for(tmp_path / "ws", load_params(tmp_path / "missing.yaml"))
    # then training stops before DVC runs, naming both snapshots
    with pytest.raises(TrainError, match="differs from this run's parameters"):
        _check_project_params(rt, tmp_path, "before training")
    # and with the project's own parameters it goes ahead
    same = runtime_for(tmp_path / "ws", load_params(tmp_path / "params.yaml"))
    _check_project_params(same, tmp_path, "before training")
