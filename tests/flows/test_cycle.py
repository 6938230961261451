"""End to end: the data-plane flows and the CLI, on a small zoo, as a new user would run them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VIGIL = [sys.executable, "-m", "vigil.cli"]


def zoo_clip_count(pairs: int = 2) -> int:
    from vigil.zoo.generators import fake_generator_names

    return 2 * pairs * len(fake_generator_names())  # each pair: a real and a fake


def small_params(tmp_path: Path, pairs: int = 2, **overrides) -> Path:
    doc = yaml.safe_load((REPO / "params.yaml").read_text())
    doc["zoo"]["pairs_per_generator"] = pairs
    for section, values in overrides.items():
        doc[section].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def workspace_env(tmp_path, clean_env):
    """A clean VIGIL_* environment pointing at a throwaway workspace (the embedded local store)."""
    monkeypatch = clean_env
    monkeypatch.setenv("VIGIL_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("VIGIL_PARAMS_FILE", str(small_params(tmp_path)))
    return tmp_path


def _cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*VIGIL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_flows_publish_a_version_and_cache_unchanged_ingest(workspace_env, prefect_harness):
    from prefect import flow

    from vigil.flows.cycle import cycle_flow
    from vigil.flows.ingest import ingest_batch
    from vigil.io.ledger import read_events, verify_ledger
    from vigil.jobs.runtime import load_runtime

    # when the main flow runs its data plane on the embedded default
    result = cycle_flow(train=False)
    # then the zoo was crawled and a validated version published
    assert result.crawl.stored == zoo_clip_count()
    assert result.ingest.status == "published" and result.ingest.version_tag == "ds-0001"
    rt = load_runtime()
    events = read_events(rt.ledger.store)
    assert [e.action for e in events] == ["crawl.run", "dataset.publish", "annotation.publish"]
    assert result.annotate.status == "published" and result.annotate.version_tag == "ds-0002"
    assert verify_ledger(rt.ledger.store).ok
    # and every step of the run names the one parameter snapshot it used, which the store keeps
    assert {e.params["snapshot"] for e in events} == {result.params_hash}
    assert rt.store.exists(f"params/{result.params_hash}.yaml")

    # and the ingest task is a Prefect cache hit while nothing upstream changed
    @flow
    def ingest_twice():
        return (ingest_batch(result.params_hash, return_state=True),
                ingest_batch(result.params_hash, return_state=True))

    first, second = ingest_twice()
    assert second.is_completed() and second.name == "Cached"
    assert second.result().version_tag == "ds-0001"


@pytest.mark.slow
def test_cli_main_job_then_audit_and_data_commands(tmp_path):
    # given a new user's shell: only a workspace and a params file
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env.update(VIGIL_WORKSPACE=str(tmp_path / "ws"), VIGIL_PARAMS_FILE=str(small_params(tmp_path)))
    # when the main job runs
    run = _cli("run", "--no-train", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    # then it says where to look
    assert "ds-0001" in run.stdout and "registry" in run.stdout and "verified" in run.stdout
    assert "ds-0002" in run.stdout and "annotator quality" in run.stdout
    versions = _cli("data", "versions", cwd=tmp_path, env=env)
    assert "ds-0001" in versions.stdout
    verify = _cli("audit", "verify", cwd=tmp_path, env=env)
    assert verify.returncode == 0 and "ledger OK" in verify.stdout
    # and a tampered ledger is caught, naming the event
    event = sorted((tmp_path / "ws" / "store" / "vigil" / "ledger" / "events").glob("[0-9]*.json"))[0]
    doc = json.loads(event.read_text())
    doc["outputs"]["stored"] = doc["outputs"]["stored"][1:]
    event.write_text(json.dumps(doc))
    tampered = _cli("audit", "verify", cwd=tmp_path, env=env)
    assert tampered.returncode == 1
    assert "edited" in tampered.stdout and event.name in tampered.stdout


def test_cli_config_errors_are_clear(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["VIGIL_STORE_BAKEND"] = "s3"
    result = _cli("config", "show", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "VIGIL_STORE_BAKEND" in result.stderr and "Traceback" not in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest:\n  frames: lots\n")
    env.pop("VIGIL_STORE_BAKEND")
    result = _cli("config", "show", "--params", str(bad), cwd=tmp_path, env=env)
    assert result.returncode == 2 and "ingest.frames = 'lots'" in result.stderr


def test_cli_help_explains_every_command():
    result = _cli("--help", cwd=REPO)
    assert result.returncode == 0
    for command in ["run", "crawl", "ingest", "zoo", "data", "audit", "config", "store", "flows", "train", "evaluate", "gate"]:
        assert command in result.stdout
    for sub in [("data", "diff"), ("audit", "verify"), ("zoo", "serve"), ("train", "stage"), ("evaluate",), ("gate",)]:
        helped = _cli(*sub, "--help", cwd=REPO)
        assert helped.returncode == 0 and "Usage" in helped.stdout


@pytest.mark.slow
def test_killed_ingest_resumes_without_loss_or_duplicates(tmp_path):
    # given a crawled zoo
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env.update(VIGIL_WORKSPACE=str(tmp_path / "ws"), VIGIL_PARAMS_FILE=str(small_params(tmp_path, ingest={"workers": 1})))
    assert _cli("crawl", cwd=tmp_path, env=env).returncode == 0
    samples = tmp_path / "ws" / "ingest" / "samples"
    # when ingest is killed after a few clips
    proc = subprocess.Popen([*VIGIL, "ingest"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(samples.glob("*/row.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(samples.glob("*/row.json")))
    assert 3 <= done_before < zoo_clip_count(), "the kill should land mid-ingest"
    # then a rerun finishes the rest and publishes every clip exactly once
    rerun = _cli("ingest", cwd=tmp_path, env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "published" in rerun.stdout and f"{zoo_clip_count()} samples" in rerun.stdout
    from vigil.io.registry import list_versions, open_registry, read_manifest_at
    from vigil.io.store import LocalStore

    registry = open_registry(tmp_path / "ws" / "registry", LocalStore(tmp_path / "ws" / "store"))
    manifest = read_manifest_at(registry, list_versions(registry)[-1].tag)
    assert len(manifest) == zoo_clip_count() and manifest["sample_id"].is_unique


@pytest.mark.slow
def test_s3_store_two_versions_diff_and_locked_ledger(tmp_path, s3_server):
    import uuid

    from vigil.io.ledger import event_key
    from vigil.io.store import ObjectLocked, S3Store

    # given settings that point at a real S3 server, with the ledger in an object-locked bucket
    bucket, ledger_bucket = f"e2e-{uuid.uuid4().hex[:8]}", f"ledger-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env.update(
        VIGIL_WORKSPACE=str(tmp_path / "ws"), VIGIL_STORE_BACKEND="s3", VIGIL_S3_ENDPOINT=s3_server.endpoint,
        VIGIL_S3_ACCESS_KEY=s3_server.access_key, VIGIL_S3_SECRET_KEY=s3_server.secret_key,
        VIGIL_BUCKET=bucket, VIGIL_LEDGER_BUCKET=ledger_bucket, VIGIL_LEDGER_RETAIN_DAYS="1",
    )
    first = small_params(tmp_path, pairs=1)
    second = tmp_path / "second.yaml"
    second.write_text(small_params(tmp_path, pairs=2).read_text())
    first.write_text(yaml.safe_dump({**yaml.safe_load(second.read_text()), "zoo": {
        **yaml.safe_load(second.read_text())["zoo"], "pairs_per_generator": 1}}))
    # when one pair per generator is crawled and ingested, then a second pair
    for params_file in (first, second):
        for command in ("crawl", "ingest"):
            result = _cli(command, "--params", str(params_file), cwd=tmp_path, env=env)
            assert result.returncode == 0, result.stdout + result.stderr
    # then two versions exist and the diff names what was added
    versions = _cli("data", "versions", cwd=tmp_path, env=env)
    assert "ds-0001" in versions.stdout and "ds-0002" in versions.stdout
    diff = _cli("data", "diff", "ds-0001", "ds-0002", cwd=tmp_path, env=env)
    assert diff.returncode == 0, diff.stderr
    assert str(zoo_clip_count(1)) in diff.stdout and "added" in diff.stdout.lower()
    # and media, provenance and the DVC remote are in the bucket; secrets are not in the registry
    store = S3Store(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket, create_bucket=False)
    assert len(list(store.list_keys("raw/"))) == zoo_clip_count(2)
    assert any(store.list_keys("dvc/"))
    committed = (tmp_path / "ws" / "registry" / ".dvc" / "config").read_text()
    assert s3_server.secret_key not in committed
    # and the ledger events sit in the locked bucket, which refuses to delete them
    ledger = S3Store(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, ledger_bucket,
                     create_bucket=False, object_lock=True)
    assert len(list(ledger.list_keys("ledger/events/"))) == 4
    with pytest.raises(ObjectLocked):
        ledger.delete(event_key(0))
    assert _cli("audit", "verify", cwd=tmp_path, env=env).returncode == 0
