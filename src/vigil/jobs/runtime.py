"""What every entry point (CLI, flow, test) does first: settings, params, store, ledger, Prefect env.

A run loads ``params.yaml`` once: :func:`load_runtime` stores the parameters as a content-addressed
snapshot (``params/<sha256>.yaml`` in the store) and every later step of the same run loads that
snapshot by its hash (:func:`load_runtime` with ``params_ref``), so an edit to the file during a long
run cannot mix two parameter sets in one model's lineage. Every ledger event names the snapshot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vigil.config.errors import ConfigError, NotFoundError
from vigil.config.params import Params, load_params, params_snapshot, parse_params_yaml
from vigil.config.settings import ENV_PREFIX, Settings, load_settings
from vigil.core.hashing import sha256_bytes
from vigil.io.ledger import Ledger
from vigil.io.store import LocalStore, ObjectStore, S3Store

PARAMS_PREFIX = "params/"
# Set by the train job for `dvc repro` (Settings.params_snapshot): its stages load this snapshot, not the file.
PARAMS_SNAPSHOT_ENV = f"{ENV_PREFIX}PARAMS_SNAPSHOT"


@dataclass(frozen=True)
class Runtime:
    """The settings, the run's parameter snapshot, the store and the ledger: what every job takes."""

    settings: Settings
    params: Params
    store: ObjectStore
    ledger: Ledger
    params_hash: str

    @property
    def workspace(self) -> Path:
        return self.settings.workspace_path

    @property
    def params_uri(self) -> str:
        return self.store.uri(params_key(self.params_hash))


def open_store(settings: Settings) -> ObjectStore:
    """The configured object store (local folder or S3)."""
    return _open_bucket(settings, settings.bucket)


def open_ledger_store(settings: Settings) -> ObjectStore:
    """The store the ledger lives in: the main one, or a lock-enabled bucket of its own."""
    if not settings.ledger_bucket:
        return open_store(settings)
    return _open_bucket(settings, settings.ledger_bucket, object_lock=True)


def _open_bucket(settings: Settings, bucket: str, *, object_lock: bool = False) -> ObjectStore:
    if settings.store_backend == "local":
        return LocalStore(settings.store_path, bucket)
    return S3Store(
        settings.s3_endpoint, settings.s3_access_key.get_secret_value(),
        settings.s3_secret_key.get_secret_value(), bucket,
        secure=settings.s3_secure, region=settings.s3_region, object_lock=object_lock,
    )


def params_key(params_hash: str) -> str:
    return f"{PARAMS_PREFIX}{params_hash}.yaml"


def save_params_snapshot(store: ObjectStore, params: Params) -> str:
    """Store the parameters content-addressed (once per distinct content); returns their hash."""
    text, digest = params_snapshot(params)
    if not store.exists(params_key(digest)):
        store.put_bytes(params_key(digest), text.encode(), content_type="application/yaml")
    return digest


def load_params_snapshot(store: ObjectStore, params_hash: str) -> Params:
    """The parameters of snapshot ``params_hash``, checked against their hash."""
    try:
        data = store.get_bytes(params_key(params_hash))
    except KeyError:
        raise NotFoundError(f"no parameter snapshot {params_hash} in {store.uri(PARAMS_PREFIX)}: start the run "
                            "again from params.yaml") from None
    if sha256_bytes(data) != params_hash:
        raise ConfigError(f"parameter snapshot {store.uri(params_key(params_hash))} does not match its hash: "
                          "it was edited; start the run again from params.yaml")
    return parse_params_yaml(data.decode(), store.uri(params_key(params_hash)))


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


def load_runtime(params_file: str | Path | None = None, *, params_ref: str | None = None,
                 check_store: bool = True) -> Runtime:
    """Settings + params + store + ledger, validated up front: bad config or an unreachable store fails here.

    ``params_ref`` (a snapshot hash from an earlier :func:`load_runtime` of the same run) wins over
    ``params_file``; without either, the settings' ``VIGIL_PARAMS_SNAPSHOT`` and then ``VIGIL_PARAMS_FILE`` apply.
    With ``check_store`` the store is probed and the parameter snapshot written.
    """
    settings = load_settings()
    params_ref = params_ref or (None if params_file else settings.params_snapshot)
    params = None if params_ref else load_params(params_file or settings.params_file)
    store = open_store(settings)
    if check_store:
        store.check()
    if params is None:
        params, params_hash = load_params_snapshot(store, params_ref), params_ref
    else:
        params_hash = save_params_snapshot(store, params) if check_store else params_snapshot(params)[1]
    ledger = Ledger(open_ledger_store(settings), settings.ledger_retain_days, settings.workspace_path,
                    params_snapshot=params_hash)
    return Runtime(settings, params, store, ledger, params_hash)


def runtime_for(workspace: str | Path, params: Params, store: ObjectStore | None = None) -> Runtime:
    """A runtime over an explicit workspace folder and parameters (tests, benchmarks, notebooks):
    the local store under the workspace unless ``store`` is given, the ledger in the same store."""
    workspace = Path(workspace).absolute()
    store = store or LocalStore(workspace / "store")
    settings = Settings(_env_file=None, workspace=workspace)  # type: ignore[call-arg]
    params_hash = save_params_snapshot(store, params)
    ledger = Ledger(store, lock_dir=workspace, params_snapshot=params_hash)
    return Runtime(settings, params, store, ledger, params_hash)
