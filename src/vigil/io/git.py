"""The one git runner for the repositories Vigil creates and manages itself.

Vigil keeps two git repositories in its workspace, the data registry (:mod:`vigil.io.registry`)
and the metrics repository (:mod:`vigil.io.metrics_repo`); both run git through here. Git runs
without a terminal prompt (a missing credential fails instead of hanging a job) and without
stdin; a failed command raises with the command line, the repository, the exit code and git's
own message.

A caller names the error its failures are raised as (``error=``), so that a git failure inside
the registry stays a :class:`~vigil.io.registry.RegistryError` for whoever catches those.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vigil.config.errors import VigilError

#: The author of commits in a repository whose machine has no git identity (a bare CI runner).
FALLBACK_IDENTITY = ("Vigil data registry", "vigil@localhost")


class GitError(VigilError):
    """A git command failed; the message says which, where, and what git answered."""


def run_git(repo: Path, *args: str, check: bool = True,
            error: type[Exception] = GitError) -> subprocess.CompletedProcess[str]:
    """``git ARGS`` in ``repo``, output captured as text; raises ``error`` on a non-zero exit if ``check``."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise error(f"git {' '.join(args)} failed in {repo} (exit {proc.returncode}): "
                    f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def has_head(repo: Path) -> bool:
    """Whether ``repo`` has a first commit yet."""
    return run_git(repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode == 0


def ensure_identity(repo: Path, *, error: type[Exception] = GitError) -> None:
    """Commits need an author; a bare CI machine has none, so set a repository-local one."""
    for key, value in zip(("user.name", "user.email"), FALLBACK_IDENTITY):
        if run_git(repo, "config", "--get", key, check=False).returncode != 0:
            run_git(repo, "config", "--local", key, value, error=error)


def list_tags(repo: Path) -> list[str]:
    """The tags of ``repo`` as git reports them (reading ``.git/refs/tags`` misses packed refs); none
    before the repository exists."""
    if not (Path(repo) / ".git").exists():
        return []
    return sorted(run_git(Path(repo), "tag", "--list").stdout.split())
