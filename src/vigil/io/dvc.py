"""The one adapter around the DVC command line.

DVC has no stable Python API for add/push/commit (DESIGN.md, "Lessons"), so Vigil runs the CLI of
the DVC installed next to this interpreter (``sys.executable -m dvc``, never whatever ``dvc`` is
first on PATH) and keeps every call here. Three things every caller needs are done once:

* **One DVC command per repository at a time.** DVC takes a repository lock and a second,
  parallel command fails with "Unable to acquire lock". :func:`repo_lock` serialises commands on
  a repository across threads and processes (``flock`` on the repository folder itself, so no
  lock file appears in the working tree); it is re-entrant within a thread, so a caller can hold
  it around a longer sequence (the data registry holds it for a whole publish).
* **Bounded parallelism.** ``push``/``pull``/``fetch`` always pass ``--jobs`` (default
  :data:`DEFAULT_JOBS`): DVC's default, 4 × CPUs, overwhelms small MinIO deployments.
* **Clear errors.** A failed command raises :class:`DvcError` carrying the command line, exit
  code and DVC's stderr (secrets in the arguments are masked).

Credentials go to ``.dvc/config.local`` (``--local``), which DVC keeps out of git.
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


class DvcError(VigilError):
    """A DVC command failed; ``stderr`` holds DVC's own explanation."""

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str, repo: Path) -> None:
        self.args_ = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.repo = repo
        detail = (stderr.strip() or stdout.strip() or "(no output)")[-4000:]
        super().__init__(f"dvc {' '.join(_masked(args))} failed in {repo} (exit {returncode}):\n{detail}")


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


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DVC_NO_ANALYTICS", "1")  # no internet; no usage reports
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def run(repo: str | Path, *args: str, timeout_s: float | None = None, check: bool = True) -> DvcResult:
    """Run ``dvc ARGS`` in ``repo`` under the repository lock; raise :class:`DvcError` on failure."""
    repo = Path(repo).resolve()
    cmd = [sys.executable, "-m", "dvc", *args]
    with repo_lock(repo):
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=repo, env=_env(), capture_output=True, text=True,
                                  timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise DvcError(args, -1, str(exc.stdout or ""), f"timed out after {timeout_s}s", repo) from exc
        elapsed = time.perf_counter() - started
    log.debug("dvc %s (%.2fs, exit %d)", " ".join(_masked(args)), elapsed, proc.returncode)
    if check and proc.returncode != 0:
        raise DvcError(args, proc.returncode, proc.stdout, proc.stderr, repo)
    return DvcResult(tuple(args), proc.stdout, proc.stderr, elapsed)


def init(repo: str | Path, *, no_scm: bool = False) -> None:
    """``dvc init`` unless ``repo`` already has a ``.dvc`` folder (idempotent)."""
    if (Path(repo) / ".dvc").is_dir():
        return
    run(repo, "init", "--quiet", *(["--no-scm"] if no_scm else []))


def config_set(repo: str | Path, key: str, value: str, *, local: bool = False) -> None:
    """``dvc config [--local] KEY VALUE``."""
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
    """``dvc remote modify [--local] NAME OPTION VALUE``; use ``local=True`` for anything secret."""
    if option in _SECRET_OPTIONS and not local:
        raise ValueError(f"refusing to write {option} to the committed DVC config: pass local=True")
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
