"""The data registry: dataset versions as tagged commits of a git + DVC repository.

This is DVC's "data registry" pattern (DESIGN.md, "Where dataset versions live"): Vigil creates
and manages a repository in its workspace (e.g. ``<workspace>/registry``), separate from the
source checkout, whose DVC remote lives in the object store. A dataset version is

* ``data/manifest.parquet`` and ``data/frames/`` tracked by DVC (their ``.dvc`` files, holding the
  md5 of each, are committed), their bytes pushed to the remote; each row's ``frames_dir`` is a
  folder relative to ``data/frames``;
* ``data/version.json`` (tag, time, message, counts, caller metadata), committed in git;
* an annotated tag ``ds-0001``, ``ds-0002``, … numbered monotonically.

Versions are cumulative: each holds the whole dataset so far; DVC stores an unchanged frame file
once, however many versions hold it. A version is either fully published (pushed, committed,
tagged) or not at all: any failure rolls the working tree back to the last published state.

The remote: for an :class:`~vigil.io.store.S3Store`, ``s3://<bucket>/dvc`` (committed) with the
endpoint in ``.dvc/config.local`` (mode 0600, never committed: endpoints differ between a laptop and
a cluster) and the credentials in each DVC command's environment, never in a file or on a command
line (:func:`vigil.io.dvc.set_remote_credentials`); for a :class:`~vigil.io.store.LocalStore`, the folder
``<store.base>/dvc``, which holds the same key layout as the bucket would. A fresh clone is made
usable by :func:`open_registry` with the store, which writes its local config.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vigil.config.errors import NotFoundError, VigilError
from vigil.core.hashing import md5_file
from vigil.core.sample import read_manifest
from vigil.io import dvc
from vigil.io.git import ensure_identity, has_head, run_git
from vigil.io.store import LocalStore, ObjectStore, S3Store

log = logging.getLogger(__name__)

REMOTE_NAME = "store"
REMOTE_PREFIX = "dvc"
TAG_PREFIX = "ds-"
DATA_DIR = "data"
MANIFEST_PATH = f"{DATA_DIR}/manifest.parquet"
FRAMES_PATH = f"{DATA_DIR}/frames"
VERSION_PATH = f"{DATA_DIR}/version.json"
_TAG_RE = re.compile(rf"^{re.escape(TAG_PREFIX)}(\d+)$")
_FETCH_STUB_PREFIX = ".vigil-fetch-"


class RegistryError(VigilError):
    """A registry operation failed; the message says which step and why."""


class PublishError(RegistryError):
    """Publishing failed; the registry was rolled back to its last published version."""


class UnknownVersion(RegistryError, NotFoundError):
    """No dataset version has this tag; the message lists the ones there are."""


@dataclass(frozen=True)
class DataRegistry:
    """An opened registry repository."""

    path: Path
    remote_url: str
    remote_name: str = REMOTE_NAME


@dataclass(frozen=True)
class DatasetVersion:
    """One published dataset version: what a model version records as its training data."""

    tag: str
    git_rev: str
    manifest_md5: str  # md5 in data/manifest.parquet.dvc
    frames_md5: str  # md5 in data/frames.dvc (a DVC ".dir" hash)
    n_samples: int
    created_at: str  # ISO-8601 UTC
    message: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "git_rev": self.git_rev, "manifest_md5": self.manifest_md5,
                "frames_md5": self.frames_md5, "n_samples": self.n_samples, "created_at": self.created_at,
                "message": self.message, "metadata": dict(self.metadata)}


@dataclass(frozen=True)
class VersionDiff:
    """What changed between two versions: samples added/removed and counts by facet."""

    a: str
    b: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    moved_split: tuple[str, ...]  # in both versions, different split (should never happen)
    counts_a: Mapping[str, Mapping[str, int]]  # facet (generator/label/split) → value → rows
    counts_b: Mapping[str, Mapping[str, int]]
    n_a: int
    n_b: int

    @property
    def deltas(self) -> dict[str, dict[str, int]]:
        """Per facet and value, rows in ``b`` minus rows in ``a`` (zero changes left out)."""
        out: dict[str, dict[str, int]] = {}
        for facet in sorted(set(self.counts_a) | set(self.counts_b)):
            ca, cb = self.counts_a.get(facet, {}), self.counts_b.get(facet, {})
            out[facet] = {v: cb.get(v, 0) - ca.get(v, 0) for v in sorted(set(ca) | set(cb))
                          if cb.get(v, 0) != ca.get(v, 0)}
        return out

    def format(self) -> str:
        """A plain-text report for logs, PR comments and auditors."""
        lines = [f"{self.a} → {self.b}: {self.n_a} → {self.n_b} samples "
                 f"(+{len(self.added)} added, -{len(self.removed)} removed)"]
        if self.moved_split:
            lines.append(f"  WARNING: {len(self.moved_split)} samples changed split: {', '.join(self.moved_split[:5])}")
        for facet in sorted(set(self.counts_a) | set(self.counts_b)):
            ca, cb = self.counts_a.get(facet, {}), self.counts_b.get(facet, {})
            lines.append(f"  by {facet}:")
            width = max((len(v) for v in set(ca) | set(cb)), default=0)
            for v in sorted(set(ca) | set(cb)):
                d = cb.get(v, 0) - ca.get(v, 0)
                lines.append(f"    {v:<{width}}  {ca.get(v, 0):>6} → {cb.get(v, 0):>6}  ({d:+d})")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# git

# The registry's git commands run through vigil.io.git; their failures are RegistryErrors.
_git = partial(run_git, error=RegistryError)


# ---------------------------------------------------------------------------------------------
# remote


def remote_settings(store: ObjectStore) -> tuple[str, dict[str, str]]:
    """The DVC remote URL for ``store`` and the options that belong in ``config.local`` (no secrets)."""
    if isinstance(store, S3Store):
        options = {"endpointurl": store.endpoint_url}
        if store.region:
            options["region"] = store.region
        return f"s3://{store.bucket}/{REMOTE_PREFIX}", options
    if isinstance(store, LocalStore):
        return str(store.base / REMOTE_PREFIX), {}
    raise RegistryError(f"no DVC remote mapping for store type {type(store).__name__}")


def open_registry(path: str | Path, store: ObjectStore, *, remote_name: str = REMOTE_NAME) -> DataRegistry:
    """Create or reopen the registry at ``path`` with its DVC remote in ``store`` (idempotent).

    On a new folder: ``git init``, ``dvc init``, the remote, an initial commit. On an existing
    registry or a fresh clone: the local config (endpoint, a different remote URL) is (re)written and
    the store's credentials handed to this process's DVC commands, so that rotating keys or moving the
    store is one call.
    """
    repo = Path(path).absolute()
    repo.mkdir(parents=True, exist_ok=True)
    url, local_options = remote_settings(store)
    if isinstance(store, S3Store):
        dvc.set_remote_credentials(repo, remote_name, access_key_id=store.access_key,
                                   secret_access_key=store.secret_key)
    with dvc.repo_lock(repo):
        if not (repo / ".git").exists():
            _git(repo, "init", "--quiet", "--initial-branch=main")
        ensure_identity(repo, error=RegistryError)
        dvc.init(repo)
        project = dvc.remotes(repo, local=False)
        if remote_name not in project:
            dvc.remote_add(repo, remote_name, url, default=True)
            # hardlinks: the workspace copy of a version costs no second copy of every frame
            dvc.config_set(repo, "cache.type", "reflink,hardlink,copy")
        current = dvc.read_config(repo, local=True).get(f'remote "{remote_name}"', {})
        if remote_name in project and project[remote_name] != url and current.get("url") != url:
            dvc.remote_modify(repo, remote_name, "url", url, local=True)  # a moved store: override locally
        for option, value in local_options.items():
            if current.get(option) != value:
                dvc.remote_modify(repo, remote_name, option, value, local=True)
        if _git(repo, "status", "--porcelain", "--", ".dvc", ".dvcignore").stdout.strip() or not has_head(repo):
            _git(repo, "add", "--", ".dvc", ".dvcignore")
            _git(repo, "commit", "--quiet", "--allow-empty", "-m", "Configure Vigil data registry")
    log.info("data registry %s, remote %s", repo, url)
    return DataRegistry(path=repo, remote_url=url, remote_name=remote_name)


# ---------------------------------------------------------------------------------------------
# versions


def _tags(repo: Path) -> list[str]:
    out = _git(repo, "tag", "--list", f"{TAG_PREFIX}*").stdout.split()
    return sorted((t for t in out if _TAG_RE.match(t)), key=lambda t: int(_TAG_RE.match(t).group(1)))  # type: ignore[union-attr]


def _next_tag(repo: Path) -> str:
    tags = _tags(repo)
    n = int(_TAG_RE.match(tags[-1]).group(1)) + 1 if tags else 1  # type: ignore[union-attr]
    return f"{TAG_PREFIX}{n:04d}"


def _dvc_md5(text: str, where: str) -> str:
    try:
        return str(yaml.safe_load(text)["outs"][0]["md5"])
    except (KeyError, IndexError, TypeError, yaml.YAMLError) as exc:
        raise RegistryError(f"{where}: not a DVC file with an output md5") from exc


def _version_at(repo: Path, tag: str) -> DatasetVersion:
    rev = _git(repo, "rev-list", "-n", "1", tag).stdout.strip()
    info = json.loads(_git(repo, "show", f"{tag}:{VERSION_PATH}").stdout)
    return DatasetVersion(tag=tag, git_rev=rev, manifest_md5=info["manifest_md5"], frames_md5=info["frames_md5"],
                          n_samples=int(info["n_samples"]), created_at=info["created_at"],
                          message=info.get("message", ""), metadata=info.get("metadata", {}))


def list_versions(registry: DataRegistry) -> list[DatasetVersion]:
    """Every published version, oldest first."""
    return [_version_at(registry.path, t) for t in _tags(registry.path)]


def get_version(registry: DataRegistry, tag: str) -> DatasetVersion:
    if tag not in _tags(registry.path):
        raise UnknownVersion(f"no dataset version {tag!r} in {registry.path}; have: {', '.join(_tags(registry.path)) or 'none'}")
    return _version_at(registry.path, tag)


def latest_version(registry: DataRegistry) -> DatasetVersion | None:
    tags = _tags(registry.path)
    return _version_at(registry.path, tags[-1]) if tags else None


def tag_version(repo: Path, tag: str, message: str) -> None:
    """The step that publishes a version: an annotated tag on the commit just made. Everything a
    caller records about the version (the ``dataset.publish`` ledger event) comes after it, so a
    process killed right here leaves a version the caller must reconcile (vigil.jobs.ingest does)."""
    _git(repo, "tag", "-a", tag, "-m", message)


def _remove(path: Path) -> None:
    """Remove a file or folder, including DVC's read-only hardlinks into its cache."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _restore(repo: Path, rev: str) -> None:
    """Put the working tree (tracked, untracked and DVC-tracked data) back to ``rev``."""
    _git(repo, "reset", "--quiet", "--hard", rev)
    _git(repo, "clean", "--quiet", "-fd", "--", DATA_DIR, f"{_FETCH_STUB_PREFIX}*")
    has_data = _git(repo, "cat-file", "-e", f"{rev}:{MANIFEST_PATH}.dvc", check=False).returncode == 0
    if has_data:
        dvc.checkout(repo, f"{MANIFEST_PATH}.dvc", f"{FRAMES_PATH}.dvc", force=True)
    else:
        for p in (MANIFEST_PATH, FRAMES_PATH):
            _remove(repo / p)


def publish_version(
    registry: DataRegistry,
    manifest_path: str | Path,
    frames_dir: str | Path,
    *,
    message: str,
    metadata: Mapping[str, Any] | None = None,
    move: bool = False,
    jobs: int = dvc.DEFAULT_JOBS,
    extra_files: Mapping[str, str | Path] | None = None,
) -> DatasetVersion:
    """Publish a manifest and its frames folder as the next version (``ds-NNNN``).

    Steps: check the manifest schema, copy (or ``move``) both into ``data/``, ``dvc add``,
    ``dvc push`` (bounded ``jobs``), write ``data/version.json``, ``git commit``, ``git tag``.
    ``extra_files`` (name → path) are tracked beside the manifest as ``data/<name>`` (a labelled
    version adds its annotation table and annotator-quality report this way); extra files of the
    previous version that are not given again are dropped, so a version never carries stale ones.
    If any step fails, the registry is restored to its last published state and
    :class:`PublishError` is raised; objects already pushed stay in the remote, unreferenced and
    harmless (they are content-addressed).
    """
    repo = registry.path
    manifest_path, frames_dir = Path(manifest_path), Path(frames_dir)
    if not frames_dir.is_dir():
        raise PublishError(f"frames folder {frames_dir} does not exist")
    for given, inside in ((manifest_path, MANIFEST_PATH), (frames_dir, FRAMES_PATH)):
        if given.resolve() == (repo / inside).resolve():
            raise PublishError(f"{given} is the registry's own copy; publish from a folder outside {repo}")
    manifest = read_manifest(manifest_path)  # schema-checked before anything changes
    n_samples = len(manifest)
    missing = [d for d in manifest["frames_dir"] if not (frames_dir / d).is_dir()]
    if missing:
        raise PublishError(f"{len(missing)} frame folders named in {manifest_path} are missing under "
                           f"{frames_dir}, e.g. {', '.join(missing[:3])}")
    started = time.perf_counter()
    with dvc.repo_lock(repo):
        base = _git(repo, "rev-parse", "HEAD").stdout.strip()
        if _git(repo, "status", "--porcelain").stdout.strip():
            log.warning("registry %s has uncommitted changes (an interrupted publish?); restoring %s", repo, base)
            _restore(repo, base)
        tag = _next_tag(repo)
        try:
            (repo / DATA_DIR).mkdir(exist_ok=True)
            extras = {name: Path(path) for name, path in (extra_files or {}).items()}
            for name in extras:
                if "/" in name or name in {Path(MANIFEST_PATH).name, Path(FRAMES_PATH).name, Path(VERSION_PATH).name}:
                    raise PublishError(f"extra file name {name!r} is reserved or not a plain file name")
            for stale in _extra_dvc_files(repo):
                _git(repo, "rm", "--quiet", "--cached", "--ignore-unmatch", "--", stale.relative_to(repo).as_posix())
                _remove(stale.with_suffix(""))
                stale.unlink()
            for target in (repo / MANIFEST_PATH, repo / FRAMES_PATH):
                _remove(target)
            if move:
                shutil.move(str(manifest_path), repo / MANIFEST_PATH)
                shutil.move(str(frames_dir), repo / FRAMES_PATH)
            else:
                shutil.copyfile(manifest_path, repo / MANIFEST_PATH)
                shutil.copytree(frames_dir, repo / FRAMES_PATH)
            for name, path in extras.items():
                shutil.copyfile(path, repo / DATA_DIR / name)
            extra_paths = [f"{DATA_DIR}/{name}" for name in extras]
            dvc.add(repo, MANIFEST_PATH, FRAMES_PATH, *extra_paths)
            manifest_md5 = _dvc_md5((repo / f"{MANIFEST_PATH}.dvc").read_text(), f"{MANIFEST_PATH}.dvc")
            frames_md5 = _dvc_md5((repo / f"{FRAMES_PATH}.dvc").read_text(), f"{FRAMES_PATH}.dvc")
            dvc.push(repo, f"{MANIFEST_PATH}.dvc", f"{FRAMES_PATH}.dvc", *(f"{p}.dvc" for p in extra_paths),
                     remote=registry.remote_name, jobs=jobs)
            created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            info = {"tag": tag, "created_at": created_at, "message": message, "n_samples": n_samples,
                    "manifest_md5": manifest_md5, "frames_md5": frames_md5, "metadata": dict(metadata or {})}
            (repo / VERSION_PATH).write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
            _git(repo, "add", "--", f"{MANIFEST_PATH}.dvc", f"{FRAMES_PATH}.dvc", f"{DATA_DIR}/.gitignore", VERSION_PATH,
                 *(f"{p}.dvc" for p in extra_paths))
            _git(repo, "commit", "--quiet", "-m", f"{tag}: {message}")
            tag_version(repo, tag, message or tag)
        except BaseException as exc:
            log.error("publishing %s failed, restoring %s: %s", tag, base[:12], exc)
            _git(repo, "tag", "-d", tag, check=False)
            try:
                _restore(repo, base)
            except Exception as restore_exc:  # report both: the cause and the failed cleanup
                raise PublishError(f"publishing {tag} failed ({exc}); restoring {base[:12]} also failed: "
                                   f"{restore_exc}") from exc
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise PublishError(f"publishing {tag} failed; registry restored to {base[:12]}: {exc}") from exc
    version = _version_at(repo, tag)
    log.info("published %s (%d samples, manifest %s, frames %s) in %.1fs", tag, n_samples, manifest_md5,
             frames_md5, time.perf_counter() - started)
    return version


# ---------------------------------------------------------------------------------------------
# reading versions


def _cached_object(registry: DataRegistry, md5: str) -> Path:
    """The cache file of a DVC object, fetched from the remote if the cache lacks it.

    Fetching an object no .dvc file in the working tree names: a temporary .dvc file naming it
    is written at the repository root for the duration of ``dvc fetch`` (under the lock).
    """
    repo = registry.path
    with dvc.repo_lock(repo):
        cache = dvc.cache_dir(repo)
        path = dvc.cache_path(cache, md5)
        if not path.is_file():
            name = f"{_FETCH_STUB_PREFIX}{md5}"
            stub = repo / f"{name}.dvc"
            stub.write_text(yaml.safe_dump({"outs": [{"md5": md5, "hash": "md5", "path": name}]}))
            try:
                dvc.fetch(repo, stub.name, remote=registry.remote_name)
            finally:
                stub.unlink(missing_ok=True)
            if not path.is_file():
                raise RegistryError(f"object {md5} is neither in the cache {cache} nor in remote {registry.remote_url}")
    if md5_file(path) != md5.removesuffix(".dir"):
        raise RegistryError(f"cache object {path} is corrupt: md5 differs from {md5}")
    return path


def _extra_dvc_files(repo: Path) -> list[Path]:
    """The .dvc files in data/ besides the manifest's and the frames' (a version's extra files)."""
    core = {f"{MANIFEST_PATH}.dvc", f"{FRAMES_PATH}.dvc"}
    return sorted(p for p in (repo / DATA_DIR).glob("*.dvc") if p.relative_to(repo).as_posix() not in core)


def files_at(registry: DataRegistry, tag: str) -> list[str]:
    """Names of the extra files version ``tag`` tracks (e.g. ``annotations.parquet``)."""
    listing = _git(registry.path, "ls-tree", "--name-only", f"{tag}:{DATA_DIR}").stdout.split()
    core = {Path(MANIFEST_PATH).name, Path(FRAMES_PATH).name}
    return sorted(n.removesuffix(".dvc") for n in listing if n.endswith(".dvc") and n.removesuffix(".dvc") not in core)


def file_at(registry: DataRegistry, tag: str, name: str) -> Path:
    """Local path (in the DVC cache, read-only) of extra file ``name`` at version ``tag``."""
    if tag not in _tags(registry.path):
        raise UnknownVersion(f"no dataset version {tag!r} in {registry.path}")
    if name not in files_at(registry, tag):
        raise RegistryError(f"version {tag} has no {name}; it has: {', '.join(files_at(registry, tag)) or 'no extra files'}")
    where = f"{tag}:{DATA_DIR}/{name}.dvc"
    return _cached_object(registry, _dvc_md5(_git(registry.path, "show", where).stdout, where))


def manifest_md5_at(registry: DataRegistry, tag: str) -> str:
    """The manifest's md5 at ``tag``, from the committed .dvc file."""
    where = f"{tag}:{MANIFEST_PATH}.dvc"
    return _dvc_md5(_git(registry.path, "show", where).stdout, where)


def read_manifest_at(registry: DataRegistry, tag: str) -> pd.DataFrame:
    """The manifest of version ``tag``, from the DVC cache or, failing that, from the remote."""
    if tag not in _tags(registry.path):
        raise UnknownVersion(f"no dataset version {tag!r} in {registry.path}")
    return read_manifest(_cached_object(registry, manifest_md5_at(registry, tag)))


def materialize_frames(registry: DataRegistry, tag: str, frames_dirs: Iterable[str], dest: str | Path) -> Path:
    """Copy the frame folders ``frames_dirs`` (manifest ``frames_dir`` values) of version ``tag``
    to ``dest/<frames_dir>/``, from the DVC cache or, failing that, the remote; md5-checked."""
    if tag not in _tags(registry.path):
        raise UnknownVersion(f"no dataset version {tag!r} in {registry.path}")
    where = f"{tag}:{FRAMES_PATH}.dvc"
    listing = json.loads(_cached_object(registry, _dvc_md5(_git(registry.path, "show", where).stdout, where))
                         .read_text())
    wanted = set(frames_dirs)
    entries = [e for e in listing if e["relpath"].split("/", 1)[0] in wanted]
    missing = wanted - {e["relpath"].split("/", 1)[0] for e in entries}
    if missing:
        raise RegistryError(f"version {tag} has no frames for {len(missing)} samples, e.g. {sorted(missing)[:3]}")
    dest = Path(dest)
    for entry in entries:
        target = dest / entry["relpath"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_cached_object(registry, entry["md5"]), target)
    return dest


_FACETS = ("generator", "label", "split")


def _facet_counts(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Rows per value of each facet, every value counted as its string (a missing one too, as "None"
    or "nan"); every facet is present, with no values in an empty manifest (unlike ingest's batch counts)."""
    return {f: {str(k): int(v) for k, v in sorted(Counter(df[f].astype(str)).items())} for f in _FACETS}


def diff_versions(registry: DataRegistry, a: str, b: str) -> VersionDiff:
    """Samples added and removed from ``a`` to ``b``, and counts by generator, label and split."""
    da, db = read_manifest_at(registry, a), read_manifest_at(registry, b)
    ids_a, ids_b = set(da["sample_id"]), set(db["sample_id"])
    both = da[["sample_id", "split"]].merge(db[["sample_id", "split"]], on="sample_id", suffixes=("_a", "_b"))
    moved = tuple(sorted(both.loc[both["split_a"] != both["split_b"], "sample_id"]))
    return VersionDiff(a=a, b=b, added=tuple(sorted(ids_b - ids_a)), removed=tuple(sorted(ids_a - ids_b)),
                       moved_split=moved, counts_a=_facet_counts(da), counts_b=_facet_counts(db),
                       n_a=len(da), n_b=len(db))
