"""A run loads its parameters once: the snapshot in the store is what every later step sees."""

from __future__ import annotations

import os

import pytest
import yaml

from vigil.config.errors import ConfigError, NotFoundError
from vigil.config.params import Params, load_params, params_snapshot
from vigil.jobs.runtime import configure_prefect, load_runtime, params_key, runtime_for


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
    rt = runtime_for(tmp_path / "ws", Params())
    # then training stops before DVC runs, naming both snapshots
    with pytest.raises(TrainError, match="differs from this run's parameters"):
        _check_project_params(rt, tmp_path, "before training")
    # and with the project's own parameters it goes ahead
    same = runtime_for(tmp_path / "ws", load_params(tmp_path / "params.yaml"))
    _check_project_params(same, tmp_path, "before training")


PREFECT_VARS = ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                "PREFECT_SERVER_ANALYTICS_ENABLED")


@pytest.fixture
def no_prefect_env(monkeypatch):
    """No PREFECT_* variable, and whatever configure_prefect sets is undone after the test."""
    for key in PREFECT_VARS:
        monkeypatch.setenv(key, "")  # recorded, so that teardown restores the machine's value or its absence
        monkeypatch.delenv(key)
    return monkeypatch


def test_configure_prefect_creates_a_fresh_workspace_and_its_prefect_home(tmp_path, clean_env, no_prefect_env):
    # given an S3-backed workspace whose folder nobody created yet
    workspace = tmp_path / "fresh" / "ws"
    clean_env.setenv("VIGIL_WORKSPACE", str(workspace))
    clean_env.setenv("VIGIL_STORE_BACKEND", "s3")
    from vigil.config.settings import load_settings

    # when Prefect is configured for it
    configure_prefect(load_settings())
    # then the workspace and PREFECT_HOME exist, so the ephemeral server can start there
    assert workspace.is_dir()
    assert (workspace / "prefect").is_dir()
    assert os.environ["PREFECT_HOME"] == str(workspace / "prefect")


def test_configure_prefect_names_a_workspace_it_cannot_create(tmp_path, clean_env, no_prefect_env):
    # given a workspace under a regular file
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    clean_env.setenv("VIGIL_WORKSPACE", str(blocker / "ws"))
    from vigil.config.settings import load_settings

    # then configuring Prefect stops with a configuration error naming the path
    with pytest.raises(ConfigError) as err:
        configure_prefect(load_settings())
    assert str(blocker / "ws") in str(err.value) and "VIGIL_WORKSPACE" in str(err.value)


def test_a_missing_params_file_named_by_the_environment_stops_the_run(user_env):
    # given VIGIL_PARAMS_FILE naming a file that was deleted
    user_env.unlink()
    # then the run does not quietly go on with the defaults
    with pytest.raises(ConfigError) as err:
        load_runtime()
    assert str(user_env) in str(err.value) and "VIGIL_PARAMS_FILE" in str(err.value)
    # nor when the file is named by argument (--params)
    with pytest.raises(ConfigError, match="--params"):
        load_runtime(user_env.parent / "typo.yaml")


def test_without_any_params_file_the_run_uses_the_defaults(tmp_path, clean_env):
    # given no VIGIL_PARAMS_FILE, no --params and no ./params.yaml (clean_env's cwd is a bare tmp folder)
    clean_env.setenv("VIGIL_WORKSPACE", str(tmp_path / "ws"))
    # then the run goes ahead on the built-in defaults
    assert load_runtime().params == Params()


def test_an_unknown_zoo_generator_is_refused_when_the_run_loads(user_env):
    from vigil.zoo.generators import fake_generator_names

    # given a params file listing a generator the zoo does not have
    user_env.write_text(yaml.safe_dump({"zoo": {"generators": [fake_generator_names()[0], "sora-9000"]}}))
    # then the run stops at once, naming the key, the bad name and the known ones
    with pytest.raises(ConfigError) as err:
        load_runtime()
    message = str(err.value)
    assert "zoo.generators" in message and "'sora-9000'" in message
    assert all(name in message for name in fake_generator_names())
    # and the real source is not a generator to publish either
    user_env.write_text(yaml.safe_dump({"zoo": {"generators": ["real"]}}))
    with pytest.raises(ConfigError, match="'real'"):
        load_runtime()
    # while known names load
    user_env.write_text(yaml.safe_dump({"zoo": {"generators": list(fake_generator_names()[:2])}}))
    assert load_runtime().params.zoo.generators == fake_generator_names()[:2]
