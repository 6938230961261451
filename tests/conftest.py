"""Shared fixtures: a real S3 server on loopback and a store of each back-end."""

from __future__ import annotations

import os

import pytest

from tests.support.stores import make_s3_store
from vigil.io.store import LocalStore
from vigil.testing.s3 import S3Server, seaweedfs_s3


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No VIGIL_* setting from the machine, and the current folder a throwaway one: a new user's shell."""
    for key in list(os.environ):
        if key.startswith("VIGIL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    with seaweedfs_s3() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """The same test against the embedded folder store and a real S3 server."""
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return make_s3_store(request.getfixturevalue("s3_server"))


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for the whole session (each ephemeral start costs ~20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny-profile Qwen2.5-VL (random weights, local tokenizer), built once per session."""
    from vigil.models.tiny import TinyModelConfig, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", TinyModelConfig(seed=0))


@pytest.fixture(scope="session")
def labelled_workspace(tmp_path_factory):
    """A workspace with a labelled version (12 clips: 1 pair per generator), built once; copy it before writing."""
    from tests.support.workspaces import build_labelled_workspace

    return build_labelled_workspace(tmp_path_factory.mktemp("labelled-ws"))
