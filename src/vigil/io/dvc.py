"""The one adapter around the DVC command line.

DVC has no stable Python API for add/push/commit (DESIGN.md, "Lessons"), so Vigil runs the CLI of
the DVC installed next to this interpreter (``sys.executable -m dvc``, never whatever ``dvc`` is
first on PATH) and keeps every call here. Four things every caller needs are done once:

* **One DVC command per repository at a time.** DVC takes a repository lock and a second,
  parallel command fails with "Unable to acquire lock". :func:`repo_lock` serialises commands on
  a repository across threads and processes (``flock`` on the repository folder itself, so no
  lock file appears in the working tree); it is re-entrant within a thread, so a caller can hold
  it around a longer sequence (the data registry holds it for a whole publish).
* **Bounded parallelism.** ``push``/``pull``/``fetch`` always pass ``--jobs`` (default
  :data:`DEFAULT_JOBS`): DVC's default, 4 × CPUs, overwhelms small MinIO deployments.
* **Clear errors.** A failed command raises :class:`DvcError` carrying the command line, exit
  code and DVC's stderr (secrets in the arguments are masked).
* **No secret on a command line or in a file.** ``dvc remote modify --local NAME
  secret_access_key KEY`` put the key in ``/proc/<pid>/cmdline``, where any local user reads it,
  and in a world-readable ``.dvc/config.local``. An S3 remote's ``access_key_id``,
  ``secret_access_key`` and ``session_token`` are instead kept in this process
  (:func:`set_remote_credentials`, which :func:`remote_modify` calls for them) and handed to each
  DVC command as ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` in its
  environment, which dvc-s3 (s3fs, botocore) reads when the config names no keys, and which only
  the same user can read (``/proc/<pid>/environ`` is mode 0400). Whoever opens the repository
  sets them again (the data registry does, on every :func:`~vigil.io.registry.open_registry`);
  to run DVC by hand in a Vigil repository, export those two variables yourself. Other secret
  options (``password``, ``token``: remotes Vigil does not use) are written straight into
  ``config.local``. ``config.local`` is created mode 0600 before DVC first writes it (DVC
  rewrites it in place, keeping the mode), and a ``config.local`` left by an older Vigil with
  keys in it is repaired on the next command: keys moved out, mode 0600.

Endpoints and other per-machine options go to ``.dvc/config.local`` (``--local``), which DVC
keeps out of git.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vigil.config.errors import ConflictError, VigilError

log = logging.getLogger(__name__)

DEFAULT_JOBS = 4
LOCK_TIMEOUT_S = 600.0
_SECRET_OPTIONS = {"secret_access_key", "access_key_id", "password", "session_token", "token"}
# Secret options of an S3 remote and the variable that carries each to DVC instead (dvc-s3 → botocore).
CREDENTIAL_ENV = {"access_key_id": "AWS_ACCESS_KEY_ID", "secret_access_key": "AWS_SECRET_ACCESS_KEY",
                  "session_token": "AWS_SESSION_TOKEN"}
# Inherited variables that would mix with (or, for a profile, override) the keys Vigil hands DVC.
_INHERITED_AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                  "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
_PRIVATE = 0o600


class DvcError(VigilError):
    """A DVC command failed; ``stderr`` holds DVC's own explanation (with any known secret masked)."""

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str, repo: Path,
                 secrets: Sequence[str] = ()) -> None:
        self.args_ = _masked(args)
        self.returncode = returncode
        self.stdout = _scrubbed(stdout, secrets)
        self.stderr = _scrubbed(stderr, secrets)
        self.repo = repo
        detail = (self.stderr.strip() or self.stdout.strip() or "(no output)")[-4000:]
        super().__init__(f"dvc {' '.join(self.args_)} failed in {repo} (exit {returncode}):\n{detail}")


class DvcLockTimeout(DvcError, ConflictError):
    """Another process kept the repository busy for longer than the lock timeout."""


@dataclass(frozen=True)
class DvcResult:
    args: tuple[str, ...]
    stdout: str
    stderr: str
    elapsed_s: float


def _masked(args: Sequence[str]) -> list[str]:
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a in _SECRET_OPTIONS:
            out[i + 1] = "***"
    return out


def _scrubbed(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every known secret value replaced by ``***`` (DVC may echo what it was given)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# ---------------------------------------------------------------------------------------------
# Credentials: in this process and in each command's environment, never in argv or on disk

_credentials: dict[tuple[str, str], dict[str, str]] = {}  # (resolved repo, remote) → option → value
_credentials_guard = threading.Lock()


def set_remote_credentials(repo: str | Path, remote: str, **options: str) -> None:
    """Keep S3 credentials of ``remote`` for the DVC commands this process runs in ``repo``.

    ``options`` are among :data:`CREDENTIAL_ENV` (``access_key_id``, ``secret_access_key``,
    ``session_token``); each is merged over what was set before. Keys an older Vigil left in
    ``config.local`` are removed from it, so the file can never shadow newer ones.
    """
    unknown = set(options) - set(CREDENTIAL_ENV)
    if unknown:
        raise ValueError(f"not an S3 credential option: {', '.join(sorted(unknown))}; use one of "
                         f"{', '.join(sorted(CREDENTIAL_ENV))}")
    repo = Path(repo).resolve()
    with _credentials_guard:
        _credentials.setdefault((str(repo), remote), {}).update(options)
    if (repo / ".dvc").is_dir():
        with repo_lock(repo):
            _repair_local_config(repo)


def forget_remote_credentials(repo: str | Path) -> None:
    """Drop every credential kept for ``repo`` (tests; rotating keys is just setting new ones)."""
    key = str(Path(repo).resolve())
    with _credentials_guard:
        for entry in [k for k in _credentials if k[0] == key]:
            del _credentials[entry]


def _default_remote(repo: Path) -> str | None:
    for local in (True, False):
        name = read_config(repo, local=local).get("core", {}).get("remote")
        if name:
            return name
    return None


def _remote_named(args: Sequence[str]) -> str | None:
    for flag, value in zip(args, args[1:]):
        if flag in ("-r", "--remote"):
            return value
    return None


def _credentials_for(repo: Path, args: Sequence[str]) -> dict[str, str]:
    """The credentials of the remote this command talks to: ``--remote NAME``, else the default remote."""
    with _credentials_guard:
        kept = {remote: dict(opts) for (path, remote), opts in _credentials.items() if path == str(repo)}
    if not kept:
        return {}
    remote = _remote_named(args) or _default_remote(repo)
    if remote is None and len(kept) == 1:
        return next(iter(kept.values()))
    return kept.get(remote or "", {})


def _local_config_path(repo: Path) -> Path:
    return repo / ".dvc" / "config.local"


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 from the start (no window in which others can read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
    os.close(fd)


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` through a 0600 temporary file beside it (atomic, never readable by others)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, _PRIVATE)  # O_CREAT's mode is ignored when a stale tmp file already existed
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_local_config(repo: Path):
    import configobj

    return configobj.ConfigObj(str(_local_config_path(repo)))


def _save_local_config(repo: Path, config) -> None:
    import io

    buffer = io.BytesIO()
    config.filename = None
    config.write(buffer)
    _write_private(_local_config_path(repo), buffer.getvalue())


def _repair_local_config(repo: Path, *, create: bool = False) -> None:
    """Make ``config.local`` private (0600) and move S3 keys out of it into this process.

    Keys found there (written by an older Vigil through ``dvc remote modify --local``) still work
    for this process: they are kept in memory unless newer ones were set. Called under the lock.
    """
    path = _local_config_path(repo)
    if not path.exists():
        if create and path.parent.is_dir():
            _create_private(path)
        return
    if path.stat().st_mode & 0o777 != _PRIVATE:
        os.chmod(path, _PRIVATE)
    if not any(option in path.read_text(errors="replace") for option in CREDENTIAL_ENV):
        return
    config = _load_local_config(repo)
    moved = 0
    for section_name, section in config.items():
        m = re.fullmatch(r'remote "(.+)"', str(section_name))
        if not m or not isinstance(section, Mapping):
            continue
        found = {option: str(section.pop(option)) for option in list(section) if option in CREDENTIAL_ENV}
        if found:
            with _credentials_guard:
                kept = _credentials.setdefault((str(repo), m.group(1)), {})
                for option, value in found.items():
                    kept.setdefault(option, value)
            moved += len(found)
    if moved:
        _save_local_config(repo, config)
        log.warning("moved %d S3 credential option(s) out of %s (they are now passed in the environment)",
                    moved, path)


def _set_local_secret(repo: Path, remote: str, option: str, value: str) -> None:
    """Write a non-S3 secret option into ``config.local`` directly: never through DVC's argv."""
    with repo_lock(repo):
        _repair_local_config(repo, create=True)
        config = _load_local_config(repo)
        config.setdefault(f'remote "{remote}"', {})[option] = value
        _save_local_config(repo, config)


# ---------------------------------------------------------------------------------------------
# Per-repository lock


class _HeldLock:
    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_locks: dict[str, _HeldLock] = {}
_locks_guard = threading.Lock()


@contextmanager
def repo_lock(repo: str | Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock of ``repo`` (re-entrant in one thread; waits up to ``timeout_s``).

    Threads of one process queue on an ``RLock``; processes queue on ``flock`` of the folder.
    """
    path = Path(repo).resolve()
    path.mkdir(parents=True, exist_ok=True)
    with _locks_guard:
        held = _locks.setdefault(str(path), _HeldLock())
    if not held.mutex.acquire(timeout=timeout_s):
        raise DvcLockTimeout(["<lock>"], -1, "", f"repository {path} busy for over {timeout_s}s in this process", path)
    try:
        if held.depth == 0:
            fd = os.open(path, os.O_RDONLY)
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        raise DvcLockTimeout(["<lock>"], -1, "",
                                             f"repository {path} locked by another process for over {timeout_s}s",
                                             path) from None
                    time.sleep(0.05)
            held.fd = fd
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)
                held.fd = None
    finally:
        held.mutex.release()


# ---------------------------------------------------------------------------------------------
# Running DVC


def _env(credentials: Mapping[str, str] | None = None) -> dict[str, str]:
    """The command's environment: ours, plus the remote's credentials (which replace any inherited AWS keys)."""
    env = dict(os.environ)
    env.setdefault("DVC_NO_ANALYTICS", "1")  # no internet; no usage reports
    env["GIT_TERMINAL_PROMPT"] = "0"
    if credentials:
        for name in _INHERITED_AWS:
            env.pop(name, None)
        env.update({CREDENTIAL_ENV[option]: value for option, value in credentials.items()})
    return env


def command(*args: str) -> list[str]:
    """The argv of ``dvc ARGS``: this interpreter's DVC. It never holds a secret (see the module doc)."""
    return [sys.executable, "-m", "dvc", *args]


def run(repo: str | Path, *args: str, timeout_s: float | None = None, check: bool = True) -> DvcResult:
    """Run ``dvc ARGS`` in ``repo`` under the repository lock; raise :class:`DvcError` on failure."""
    repo = Path(repo).resolve()
    cmd = command(*args)
    with repo_lock(repo):
        if (repo / ".dvc").is_dir():
            # private before DVC first writes it; an older Vigil's keys moved out before DVC reads it
            _repair_local_config(repo, create="--local" in args)
        credentials = _credentials_for(repo, args)
        secrets = [v for o, v in credentials.items() if o != "access_key_id" and len(v) >= 4]  # ids are not secret
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=repo, env=_env(credentials), capture_output=True, text=True,
                                  timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise DvcError(args, -1, str(exc.stdout or ""), f"timed out after {timeout_s}s", repo, secrets) from exc
        elapsed = time.perf_counter() - started
    log.debug("dvc %s (%.2fs, exit %d)", " ".join(_masked(args)), elapsed, proc.returncode)
    if check and proc.returncode != 0:
        raise DvcError(args, proc.returncode, proc.stdout, proc.stderr, repo, secrets)
    return DvcResult(tuple(args), _scrubbed(proc.stdout, secrets), _scrubbed(proc.stderr, secrets), elapsed)


def init(repo: str | Path, *, no_scm: bool = False) -> None:
    """``dvc init`` unless ``repo`` already has a ``.dvc`` folder (idempotent)."""
    if (Path(repo) / ".dvc").is_dir():
        return
    run(repo, "init", "--quiet", *(["--no-scm"] if no_scm else []))


def config_set(repo: str | Path, key: str, value: str, *, local: bool = False) -> None:
    """``dvc config [--local] KEY VALUE``; a remote's secret option goes the way of :func:`remote_modify`."""
    m = re.fullmatch(r"remote\.(.+)\.([^.]+)", key)
    if m and m.group(2) in _SECRET_OPTIONS:
        remote_modify(repo, m.group(1), m.group(2), value, local=local)
        return
    run(repo, "config", *(["--local"] if local else []), key, value)


def read_config(repo: str | Path, *, local: bool = False) -> dict[str, dict[str, str]]:
    """DVC's repository config (``.dvc/config``, or ``config.local``) as section → options.

    Read directly (DVC's config is configobj INI) because reading it through the CLI costs half a
    second per call; every write still goes through the CLI.
    """
    import configobj

    path = Path(repo) / ".dvc" / ("config.local" if local else "config")
    if not path.is_file():
        return {}
    return {str(k): {str(o): str(v) for o, v in section.items()} for k, section in configobj.ConfigObj(str(path)).items()
            if isinstance(section, Mapping)}


def remotes(repo: str | Path, *, local: bool = False) -> dict[str, str]:
    """Remotes defined in the committed config (or ``config.local``), name → URL."""
    found = {}
    for section, options in read_config(repo, local=local).items():
        m = re.fullmatch(r'remote "(.+)"', section)
        if m and "url" in options:
            found[m.group(1)] = options["url"]
    return found


def remote_add(repo: str | Path, name: str, url: str, *, default: bool = True, local: bool = False,
               force: bool = True) -> None:
    """``dvc remote add [-d] [--local] [-f] NAME URL``."""
    run(repo, "remote", "add", *(["-d"] if default else []), *(["--local"] if local else []),
        *(["-f"] if force else []), name, url)


def remote_modify(repo: str | Path, name: str, option: str, value: str, *, local: bool = False) -> None:
    """``dvc remote modify [--local] NAME OPTION VALUE``; use ``local=True`` for anything secret.

    A secret never reaches DVC's argv: S3 keys go to :func:`set_remote_credentials`, other secret
    options straight into the private ``config.local`` (module doc).
    """
    if option in _SECRET_OPTIONS and not local:
        raise ValueError(f"refusing to write {option} to the committed DVC config: pass local=True")
    if option in CREDENTIAL_ENV:
        set_remote_credentials(repo, name, **{option: value})
        return
    if option in _SECRET_OPTIONS:
        _set_local_secret(Path(repo).resolve(), name, option, value)
        return
    run(repo, "remote", "modify", *(["--local"] if local else []), name, option, value)


def add(repo: str | Path, *paths: str | Path) -> None:
    """``dvc add PATHS`` (paths relative to ``repo`` or absolute inside it)."""
    run(repo, "add", "--quiet", *map(str, paths))


def push(repo: str | Path, *targets: str | Path, remote: str | None = None, jobs: int = DEFAULT_JOBS) -> DvcResult:
    """``dvc push --jobs N`` (bounded: see module doc)."""
    return run(repo, "push", "--jobs", str(jobs), *(["--remote", remote] if remote else []), *map(str, targets))


def pull(repo: str | Path, *targets: str | Path, remote: str | None = None, jobs: int = DEFAULT_JOBS) -> DvcResult:
    """``dvc pull --jobs N``: fetch into the cache and check out into the workspace."""
    return run(repo, "pull", "--jobs", str(jobs), *(["--remote", remote] if remote else []), *map(str, targets))


def fetch(repo: str | Path, *targets: str | Path, remote: str | None = None, jobs: int = DEFAULT_JOBS) -> DvcResult:
    """``dvc fetch --jobs N``: download into the cache only."""
    return run(repo, "fetch", "--jobs", str(jobs), *(["--remote", remote] if remote else []), *map(str, targets))


def checkout(repo: str | Path, *targets: str | Path, force: bool = True) -> None:
    """``dvc checkout``: make the workspace match the .dvc files (from the cache)."""
    run(repo, "checkout", "--quiet", *(["--force"] if force else []), *map(str, targets))


def status(repo: str | Path, *targets: str | Path, cloud: bool = False, remote: str | None = None,
           jobs: int = DEFAULT_JOBS) -> dict:
    """``dvc status --json`` as a dict; empty means up to date (``cloud``: against the remote)."""
    args = ["status", "--json"]
    if cloud:
        args += ["--cloud", "--jobs", str(jobs)]
    if remote:
        args += ["--remote", remote]
    out = run(repo, *args, *map(str, targets)).stdout.strip()
    return json.loads(out) if out else {}


def cache_dir(repo: str | Path) -> Path:
    """The repository's DVC cache folder: ``cache.dir`` (local config first) or ``.dvc/cache``."""
    repo = Path(repo).resolve()
    for local in (True, False):
        configured = read_config(repo, local=local).get("cache", {}).get("dir")
        if configured:
            path = Path(configured)
            return path if path.is_absolute() else (repo / ".dvc" / path).resolve()
    return repo / ".dvc" / "cache"


def cache_path(cache: Path, md5: str) -> Path:
    """Where DVC 3 keeps the object with this hash (``files/md5/ab/cdef…``; dirs end in .dir)."""
    return cache / "files" / "md5" / md5[:2] / md5[2:]
