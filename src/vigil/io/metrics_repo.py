"""A small git + DVC repository of evaluation metrics, so that ``dvc metrics diff`` compares two models.

DVC compares metrics between revisions, not between two files. Each gate therefore commits the
champion's metric files, tags that commit ``<decision>-champion``, then the candidate's, tagged
``<decision>-candidate``:

    cd <workspace>/metrics-repo && dvc metrics diff gd-…-champion gd-…-candidate

The files (``fixed.json``, ``recent.json``) hold each set's numeric metrics, flattened by DVC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from vigil.io import dvc
from vigil.io.git import ensure_identity, has_head, run_git
from vigil.io.registry import RegistryError

DVC_YAML = "metrics:\n  - fixed.json\n  - recent.json\n"

# Git failures here are RegistryErrors, as they were when this module borrowed the registry's runner.
_git = partial(run_git, error=RegistryError)


def numeric_only(doc: Any) -> Any:
    """The numeric leaves of a metrics document (lists and None dropped: DVC shows numbers).

    >>> numeric_only({"a": 1, "b": None, "c": [1], "d": {"e": 0.5, "f": "x"}})
    {'a': 1, 'd': {'e': 0.5}}
    """
    if isinstance(doc, Mapping):
        out = {str(k): numeric_only(v) for k, v in doc.items()}
        return {k: v for k, v in out.items() if v is not None and v != {}}
    if isinstance(doc, bool) or not isinstance(doc, int | float):
        return None
    return doc


def open_metrics_repo(path: str | Path) -> Path:
    repo = Path(path).absolute()
    repo.mkdir(parents=True, exist_ok=True)
    with dvc.repo_lock(repo):
        if not (repo / ".git").exists():
            _git(repo, "init", "--quiet", "--initial-branch=main")
        ensure_identity(repo, error=RegistryError)
        dvc.init(repo)
        if not has_head(repo):
            (repo / "dvc.yaml").write_text(DVC_YAML)
            _git(repo, "add", "--", ".dvc", ".dvcignore", "dvc.yaml")
            _git(repo, "commit", "--quiet", "-m", "Vigil evaluation metrics")
    return repo


def commit_metrics(repo: Path, metrics_by_set: Mapping[str, Mapping[str, Any]], *, tag: str, message: str) -> str:
    """Write one model's metric files, commit and tag; returns the commit."""
    with dvc.repo_lock(repo):
        for name in ("fixed", "recent"):
            doc = numeric_only(metrics_by_set.get(name) or {})
            (repo / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        _git(repo, "add", "--", "fixed.json", "recent.json")
        _git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
        _git(repo, "tag", "--force", tag)
        return _git(repo, "rev-parse", "HEAD").stdout.strip()
