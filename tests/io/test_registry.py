"""The data registry (vigil.io.registry) and the DVC adapter (vigil.io.dvc): real git, real DVC,
real pushes to a local-folder store and to an S3 server on loopback."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from vigil.core.sample import ManifestSchemaError, Sample, write_manifest
from vigil.io import dvc
from vigil.io.registry import (
    PublishError,
    diff_versions,
    get_version,
    list_versions,
    open_registry,
    publish_version,
    read_manifest_at,
)
from vigil.io.store import LocalStore, S3Store

log = logging.getLogger(__name__)


def _sid(i: int) -> str:
    return hashlib.sha256(f"r-{i}".encode()).hexdigest()


def make_dataset(root: Path, n: int, name: str) -> tuple[Path, Path]:
    """A manifest of ``n`` samples (pairs; real, gen-a, gen-b) and a Skyra-layout frames folder."""
    frames = root / f"frames-{name}"
    rows = []
    for i in range(n):
        sample_id = _sid(i)
        fake = i % 2 == 1
        rows.append(Sample.example(
            sample_id=sample_id, pair_id=f"pair-{i // 2}", label="fake" if fake else "real",
            generator=("gen-a" if i < 10 else "gen-b") if fake else "real",
            split=["train", "val", "test"][(i // 2) % 3], frames_dir=f"{sample_id[:2]}/{sample_id}"))
        folder = frames / sample_id[:2] / sample_id
        folder.mkdir(parents=True, exist_ok=True)
        for k in (1, 2):
            (folder / f"{k}.png").write_bytes(hashlib.sha256(f"{i}/{k}".encode()).digest() * 64)
        (folder / "timestamps.txt").write_text("0.0\n0.5\n")
    return write_manifest(rows, root / f"manifest-{name}.parquet"), frames


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def s3_store(server, bucket: str | None = None, *, readonly: bool = False) -> S3Store:
    bucket = bucket or f"reg-{uuid.uuid4().hex[:12]}"
    if readonly:
        return S3Store(server.endpoint, server.readonly_access_key, server.readonly_secret_key, bucket,
                       create_bucket=False)
    return S3Store(server.endpoint, server.access_key, server.secret_key, bucket)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def any_store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return s3_store(request.getfixturevalue("s3_server"))


def test_publish_list_diff_clone_and_pull(any_store, tmp_path):
    reg = open_registry(tmp_path / "registry", any_store)
    assert open_registry(tmp_path / "registry", any_store) == reg  # idempotent
    m1, f1 = make_dataset(tmp_path, 12, "v1")
    m2, f2 = make_dataset(tmp_path, 20, "v2")  # cumulative: the first 12 samples again, plus 8

    started = time.perf_counter()
    v1 = publish_version(reg, m1, f1, message="first crawl", metadata={"crawl_run": "r1"})
    v2 = publish_version(reg, m2, f2, message="second crawl", metadata={"crawl_run": "r2"})
    log.info("DVC publish of two versions on %s: %.2fs", type(any_store).__name__, time.perf_counter() - started)

    assert (v1.tag, v2.tag) == ("ds-0001", "ds-0002")
    assert v2.n_samples == 20 and v2.metadata == {"crawl_run": "r2"} and v2.frames_md5.endswith(".dir")
    assert [v.tag for v in list_versions(reg)] == ["ds-0001", "ds-0002"]
    assert get_version(reg, "ds-0001") == v1
    assert git(reg.path, "rev-parse", "ds-0002^{commit}").strip() == v2.git_rev
    assert git(reg.path, "status", "--porcelain") == ""
    committed = json.loads(git(reg.path, "show", "ds-0001:data/version.json"))
    assert committed["manifest_md5"] == v1.manifest_md5 and committed["metadata"] == {"crawl_run": "r1"}
    assert "secret" not in git(reg.path, "show", "HEAD:.dvc/config").lower()

    diff = diff_versions(reg, "ds-0001", "ds-0002")
    assert len(diff.added) == 8 and diff.removed == () and diff.moved_split == ()
    assert diff.counts_a["label"] == {"fake": 6, "real": 6}
    assert diff.deltas["label"] == {"fake": 4, "real": 4}
    assert diff.deltas["generator"] == {"gen-b": 4, "real": 4}
    assert "+8 added" in diff.format()

    keys = list(any_store.list_keys("dvc/"))
    md5 = v1.manifest_md5
    assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in keys
    # two manifests, two .dir listings, each distinct frame file once (timestamps.txt is shared)
    assert len(keys) == 2 + 2 + 20 * 2 + 1

    # a fresh clone knows nothing but git: open it with the store, pull, get the same bytes
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(reg.path), str(clone)], check=True)
    creg = open_registry(clone, any_store)
    dvc.pull(clone)
    assert (clone / "data/manifest.parquet").read_bytes() == m2.read_bytes()
    assert sorted(p.name for p in (clone / "data/frames").rglob("*.png"))[:2] == ["1.png", "1.png"]
    # an older version is not in the clone's cache: read_manifest_at fetches it from the remote
    old = read_manifest_at(creg, "ds-0001")
    assert sorted(old["sample_id"]) == sorted(_sid(i) for i in range(12))
    assert git(clone, "status", "--porcelain") == ""


@pytest.mark.s3
def test_failed_push_publishes_nothing(s3_server, tmp_path):
    admin = s3_store(s3_server)
    reg = open_registry(tmp_path / "registry", admin)
    m1, f1 = make_dataset(tmp_path, 6, "v1")
    publish_version(reg, m1, f1, message="v1", metadata={})
    head = git(reg.path, "rev-parse", "HEAD")

    # the same registry with the server's read-only identity: DVC's push is refused
    reader = open_registry(reg.path, s3_store(s3_server, admin.bucket, readonly=True))
    m2, f2 = make_dataset(tmp_path, 10, "v2")
    with pytest.raises(PublishError) as err:
        publish_version(reader, m2, f2, message="v2", metadata={})
    assert "push" in str(err.value)
    assert [v.tag for v in list_versions(reg)] == ["ds-0001"]
    assert git(reg.path, "rev-parse", "HEAD") == head
    assert git(reg.path, "status", "--porcelain", "--untracked-files=all") == ""
    assert (reg.path / "data/manifest.parquet").read_bytes() == m1.read_bytes()
    assert len(list((reg.path / "data/frames").rglob("*.png"))) == 6 * 2

    # with working credentials again, the next publish takes the next number
    reg = open_registry(reg.path, admin)
    assert publish_version(reg, m2, f2, message="v2", metadata={}).tag == "ds-0002"


def test_bad_manifest_or_missing_frames_are_refused_before_anything_changes(tmp_path):
    reg = open_registry(tmp_path / "registry", LocalStore(tmp_path / "store"))
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"sample_id": ["x"]}).to_parquet(bad)
    (tmp_path / "frames").mkdir()
    with pytest.raises(ManifestSchemaError, match="missing"):
        publish_version(reg, bad, tmp_path / "frames", message="bad", metadata={})
    good, _ = make_dataset(tmp_path, 2, "frameless")
    with pytest.raises(PublishError, match="2 frame folders .* are missing"):
        publish_version(reg, good, tmp_path / "frames", message="no frames", metadata={})
    assert list_versions(reg) == [] and not (reg.path / "data").exists()


def test_open_registry_sets_an_identity_on_a_bare_machine(tmp_path, monkeypatch):
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    reg = open_registry(tmp_path / "registry", LocalStore(tmp_path / "store"))
    assert git(reg.path, "config", "--local", "user.email").strip()
    assert git(reg.path, "log", "--format=%s").strip() == "Configure Vigil data registry"


def test_parallel_dvc_commands_are_serialised(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    dvc.init(repo)
    errors: list[BaseException] = []

    def add(i: int) -> None:
        (repo / f"f{i}.txt").write_text(str(i))
        try:
            dvc.add(repo, f"f{i}.txt")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all((repo / f"f{i}.txt.dvc").is_file() for i in range(3))


def test_dvc_errors_carry_stderr_and_hide_secrets(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    dvc.init(repo)
    with pytest.raises(dvc.DvcError) as err:
        dvc.add(repo, "does-not-exist.txt")
    assert "does-not-exist.txt" in str(err.value) and err.value.returncode != 0
    with pytest.raises(ValueError, match="local=True"):
        dvc.remote_modify(repo, "store", "secret_access_key", "s3cr3t")
    assert "s3cr3t" not in " ".join(dvc._masked(["remote", "modify", "x", "secret_access_key", "s3cr3t"]))


def test_repo_lock_excludes_other_processes(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, pathlib\n"
        "from vigil.io.dvc import repo_lock\n"
        "with repo_lock(sys.argv[1]):\n"
        "    pathlib.Path(sys.argv[2]).touch(); time.sleep(1.5)\n"), str(repo), str(ready)])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and holder.poll() is None, "lock holder did not start"
            time.sleep(0.02)
        with pytest.raises(dvc.DvcLockTimeout):
            with dvc.repo_lock(repo, timeout_s=0.2):
                pass
        started = time.monotonic()
        with dvc.repo_lock(repo), dvc.repo_lock(repo):  # waits for the other process; re-entrant
            waited = time.monotonic() - started
        assert waited > 0.3
    finally:
        holder.wait(timeout=30)
