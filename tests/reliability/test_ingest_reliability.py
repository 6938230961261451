"""Ingest under two concurrent runs and under a SIGKILL right after ``git tag``.

Real child processes on one workspace: two ``vigil ingest`` started together (one publishes a
complete version, the other is refused naming the lock, no clip quarantined); and one killed just
after the registry tagged its version, before the ledger heard of it (a clean re-run records the
missing ``dataset.publish`` event, and the result matches an uninterrupted run).
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.jobs.test_ingest import add_good_pairs, events, params
from tests.support.killpoints import run_child
from vigil.io.ledger import verify_ledger
from vigil.io.registry import list_versions, open_registry, read_manifest_at
from vigil.io.store import LocalStore
from vigil.jobs.ingest import ingest
from vigil.jobs.runtime import runtime_for

REPO = Path(__file__).resolve().parents[2]


def _write_params(path: Path) -> Path:
    path.write_text(yaml.safe_dump(json.loads(params().model_dump_json())))
    return path


def _cli_ingest(barrier: Path, parties: int) -> str:
    """Child code: import everything ingest needs, then wait at a file barrier until all ``parties``
    are ready (so that the runs overlap), then run ``vigil ingest`` and exit with its code."""
    return ("import os, sys, time\n"
            "from pathlib import Path\n"
            "import great_expectations  # noqa: F401  (GX's import is the slow part: both start level)\n"
            "from vigil.cli import app\n"
            "import vigil.jobs.ingest, vigil.io.validation, vigil.io.registry  # noqa: F401\n"
            f"barrier = Path({str(barrier)!r})\n"
            "(barrier / str(os.getpid())).touch()\n"
            "deadline = time.time() + 120\n"
            f"while len(list(barrier.iterdir())) < {parties} and time.time() < deadline:\n"
            "    time.sleep(0.01)\n"
            "try:\n"
            "    app(['ingest'], prog_name='vigil')\n"
            "except SystemExit as exc:\n"
            "    sys.exit(exc.code)\n")


def test_two_concurrent_ingests_publish_one_complete_version(tmp_path):
    # given a workspace with 8 crawled clips and its settings in the environment
    ws = tmp_path / "ws"
    store = LocalStore(ws / "store")
    ids = add_good_pairs(store, tmp_path / "media")
    env = {"VIGIL_WORKSPACE": str(ws), "VIGIL_PARAMS_FILE": str(_write_params(tmp_path / "params.yaml")),
           "VIGIL_STORE_BACKEND": "local"}

    # when two `vigil ingest` processes start at the same moment
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: run_child(_cli_ingest(barrier, 2), env=env, cwd=REPO, timeout_s=300), range(2)))

    # then one publishes and the other is refused at once (exit 7), naming the lock and its holder
    codes = sorted(r.returncode for r in runs)
    assert codes == [0, 7], [(r.returncode, r.stdout[-2000:], r.stderr[-2000:]) for r in runs]
    refused = next(r for r in runs if r.returncode == 7)
    said = " ".join((refused.stdout + refused.stderr).split())
    assert "another ingest run" in said and "held by pid" in said, said
    assert "locks/ingest.lock" in "".join(said.split()), said  # the console may wrap the path
    # and exactly one version holds every clip, recorded once, with nothing quarantined
    rt = runtime_for(ws, params(), store)
    registry = open_registry(ws / "registry", store)
    (version,) = list_versions(registry)
    assert set(read_manifest_at(registry, version.tag)["sample_id"]) == set(ids)
    (published,) = events(rt, "dataset.publish")
    assert published.outputs["tag"] == version.tag
    assert not list(store.list_keys("quarantine/"))
    assert not list((ws / "ingest" / "samples").glob("*/quarantined.json"))
    assert verify_ledger(store).ok


_INGEST_CHILD = """
from pathlib import Path
from vigil.config.params import load_params
from vigil.io.store import LocalStore
from vigil.jobs.ingest import ingest
from vigil.jobs.runtime import runtime_for
ws = Path({ws!r})
print(ingest(runtime_for(ws, load_params({params_file!r}), LocalStore(ws / "store"))).summary())
"""


def test_a_run_killed_after_git_tag_is_reconciled_by_the_next(tmp_path):
    # given two identical workspaces of 8 crawled clips
    killed_ws, clean_ws = tmp_path / "killed", tmp_path / "clean"
    add_good_pairs(LocalStore(killed_ws / "store"), tmp_path / "media")
    shutil.copytree(killed_ws / "store", clean_ws / "store")
    params_file = _write_params(tmp_path / "params.yaml")

    # when an ingest is SIGKILLed right after the registry tagged its version
    child = run_child(_INGEST_CHILD.format(ws=str(killed_ws), params_file=str(params_file)),
                      kill_at="vigil.io.registry:tag_version", when="after", cwd=REPO, timeout_s=300)
    assert child.killed, child.stderr[-3000:]
    killed = runtime_for(killed_ws, params(), LocalStore(killed_ws / "store"))
    assert [v.tag for v in list_versions(open_registry(killed_ws / "registry", killed.store))] == ["ds-0001"]
    assert not events(killed, "dataset.publish")  # the version exists, the ledger never heard of it

    # then a clean re-run records the missing event, once, and says so
    report = ingest(killed)
    assert report.status == "unchanged" and report.version_tag == "ds-0001" and report.repaired
    assert "dataset.publish" in report.summary()
    again = ingest(killed)
    assert again.status == "unchanged" and not again.repaired
    (repaired,) = events(killed, "dataset.publish")
    assert repaired.outputs["tag"] == "ds-0001" and repaired.outputs["repaired"] is True
    assert verify_ledger(killed.store).ok

    # and the result is what an uninterrupted run makes: same tags, same rows, same recorded facts
    clean = runtime_for(clean_ws, params(), LocalStore(clean_ws / "store"))
    assert ingest(clean).status == "published"
    registries = [open_registry(ws / "registry", rt.store) for ws, rt in ((killed_ws, killed), (clean_ws, clean))]
    assert [[v.tag for v in list_versions(r)] for r in registries] == [["ds-0001"], ["ds-0001"]]
    rows = [read_manifest_at(r, "ds-0001").sort_values("sample_id").reset_index(drop=True) for r in registries]
    assert rows[0].equals(rows[1])
    (uninterrupted,) = events(clean, "dataset.publish")

    def facts(event) -> dict:
        outputs = {k: v for k, v in event.outputs.items() if k not in {"git_rev", "validation_report", "repaired"}}
        return {"inputs": event.inputs, "outputs": outputs, "params": event.params}

    assert facts(repaired) == facts(uninterrupted)
