"""What every entry point (CLI, flow, test) does first: settings, params, store, ledger, Prefect env.

A run loads ``params.yaml`` once: :func:`load_runtime` stores the parameters as a content-addressed
snapshot (``params/<sha256>.yaml`` in the store) and every later step of the same run loads that
snapshot by its hash (:func:`load_runtime` with ``params_ref``), so an edit to the file during a long
run cannot mix two parameter sets in one model's lineage. Every ledger event names the snapshot.

Parameters are checked where they are loaded: :mod:`vigil.config.params` checks everything it can
alone, and :func:`check_params` adds the rules that need a domain package (the zoo's generator
names), which vigil.config may not import. Entry points load through :func:`load_runtime` or
:func:`load_checked_params`, so that both checks run before anything starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vigil.config.errors import ConfigError, NotFoundError
from vigil.config.params import Params, load_configured_params, params_snapshot, parse_params_yaml
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


def check_params(params: Params, source: str = "params.yaml") -> Params:
    """The checks vigil.config cannot make (it imports no domain package): every ``zoo.generators`` name is
    one of the zoo's fake generators. Without it an unknown name fails much later, deep in a render."""
    if params.zoo.generators is None:
        return params  # all of them; and the zoo's import (numpy, scipy) is only paid when names are listed
    from vigil.zoo.generators import fake_generator_names

    known = fake_generator_names()
    unknown = [name for name in params.zoo.generators if name not in known]
    if unknown:
        raise ConfigError(f"invalid configuration in {source}:\n  zoo.generators = {list(params.zoo.generators)!r}: "
                          f"unknown fake generator(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)} "
                          "(or null for all)")
    return params


def load_checked_params(settings: Settings, params_file: str | Path | None = None) -> Params:
    """The parameters of an entry point that needs no store (``vigil zoo serve``, ``vigil config show``):
    loaded like :func:`load_runtime` loads them (``--params``, VIGIL_PARAMS_FILE, ./params.yaml) and checked."""
    return check_params(load_configured_params(settings, params_file), str(params_file or settings.params_file))


def configure_prefect(settings: Settings) -> None:
    """Point Prefect at the configured API, or keep its ephemeral API's state in the workspace.

    Must run before ``import prefect`` reads its settings. Explicit PREFECT_* variables win. The
    workspace and PREFECT_HOME folders are created here: Prefect does not create a missing home, and
    its ephemeral server then never answers (a fresh S3 workspace has no folder until now).
    """
    if settings.prefect_api_url:
        os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    os.environ.setdefault("PREFECT_HOME", str(settings.workspace_path / "prefect"))
    # A fresh PREFECT_HOME can take longer than the default 20 s to start the ephemeral server.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _make_folder(settings.workspace_path, f"the workspace ({ENV_PREFIX}WORKSPACE)")
    _make_folder(Path(os.environ["PREFECT_HOME"]).expanduser(), "PREFECT_HOME")


def _make_folder(path: Path, what: str) -> None:
    """Create ``path`` (and its parents), or say which folder cannot be made and why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot create {what} folder {path}: {reason}; point it at a folder you can write "
                          "(not under a file)") from exc


def load_runtime(params_file: str | Path | None = None, *, params_ref: str | None = None,
                 check_store: bool = True) -> Runtime:
    """Settings + params + store + ledger, validated up front: bad config or an unreachable store fails here.

    ``params_ref`` (a snapshot hash from an earlier :func:`load_runtime` of the same run) wins over
    ``params_file``; without either, the settings' ``VIGIL_PARAMS_SNAPSHOT`` and then ``VIGIL_PARAMS_FILE`` apply,
    and last ``./params.yaml`` or, where there is none, the built-in defaults. A named file that does not exist
    is a ConfigError. With ``check_store`` the store is probed and the parameter snapshot written.
    """
    settings = load_settings()
    params_ref = params_ref or (None if params_file else settings.params_snapshot)
    params = None if params_ref else load_checked_params(settings, params_file)
    store = open_store(settings)
    if check_store:
        store.check()
    if params is None:
        params, params_hash = load_params_snapshot(store, params_ref), params_ref
        check_params(params, store.uri(params_key(params_hash)))
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
