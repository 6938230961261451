"""What every entry point (CLI, flow, test) does first: settings, params, store, Prefect env."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vigil.io.ledger import Ledger
from vigil.io.store import ObjectStore
from vigil.params import Params, load_params
from vigil.settings import Settings, load_settings, open_ledger_store, open_store


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    params: Params
    store: ObjectStore
    ledger: Ledger

    @property
    def workspace(self) -> Path:
        return self.settings.workspace_path


def teacher_endpoint(settings: Settings):
    """The annotation teacher from VIGIL_TEACHER_URL/_MODEL/_API_KEY, or None when unset."""
    from vigil.jobs.annotate import TeacherEndpoint

    if not settings.teacher_url:
        return None
    key = settings.teacher_api_key.get_secret_value() or None
    return TeacherEndpoint(settings.teacher_url, settings.teacher_model, key)


def configure_prefect(settings: Settings) -> None:
    """Point Prefect at the configured API, or keep its ephemeral API's state in the workspace.

    Must run before ``import prefect`` reads its settings. Explicit PREFECT_* variables win.
    """
    if settings.prefect_api_url:
        os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    os.environ.setdefault("PREFECT_HOME", str(settings.workspace_path / "prefect"))
    # A fresh PREFECT_HOME can take longer than the default 20 s to start the ephemeral server.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def load_runtime(params_file: str | Path | None = None, *, check_store: bool = True) -> Runtime:
    """Settings + params + store, validated up front: bad config or an unreachable store fails here."""
    settings = load_settings()
    params = load_params(params_file or settings.params_file)
    store = open_store(settings)
    ledger = Ledger(open_ledger_store(settings), settings.ledger_retain_days, settings.workspace_path)
    if check_store:
        store.check()
    return Runtime(settings, params, store, ledger)
