"""The ledger under a SIGKILL mid-append and under two concurrent writers: never blocked, never forked.

Real child processes: one is killed between writing its event and moving the head (what a power cut
leaves), then a fresh process appends; two others append 50 events each into one store at once.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.killpoints import run_child
from vigil.io.ledger import GENESIS, HEAD_KEY, read_events, verify_ledger
from vigil.io.store import LocalStore, S3Store


@pytest.fixture(params=["local", "s3"])
def store_spec(request, tmp_path):
    """(code that builds ``store`` in a child, the same store here)."""
    if request.param == "local":
        root = tmp_path / "store"
        return f"from vigil.io.store import LocalStore\nstore = LocalStore({str(root)!r})\n", LocalStore(root)
    server = request.getfixturevalue("s3_server")
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    here = S3Store(server.endpoint, server.access_key, server.secret_key, bucket)
    code = ("from vigil.io.store import S3Store\n"
            f"store = S3Store({server.endpoint!r}, {server.access_key!r}, {server.secret_key!r}, {bucket!r}, "
            "create_bucket=False)\n")
    return code, here


def _appender(store_code: str, actions: list[str], *, lock_dir: str | None = None, start_at: float = 0.0) -> str:
    """Child code: build the store, wait for ``start_at`` (so that writers overlap), append, print the seqs."""
    return (store_code + "import json, time\n"
            "from pathlib import Path\n"
            "from vigil.io.ledger import append_event\n"
            f"time.sleep(max(0.0, {start_at!r} - time.time()))\n"
            f"lock_dir = Path({lock_dir!r}) if {lock_dir!r} else None\n"
            f"actions = {actions!r}\n"
            "seqs = [append_event(store, a, outputs={'n': i}, lock_dir=lock_dir).seq for i, a in enumerate(actions)]\n"
            "print(json.dumps(seqs))\n")


def _assert_chain(store, expected_actions: list[str]) -> None:
    """Every expected event exactly once, numbered 0..n-1, each linked to the one before."""
    events = read_events(store)
    assert sorted(e.action for e in events) == sorted(expected_actions)
    assert [e.seq for e in events] == list(range(len(expected_actions)))
    assert [e.prev_hash for e in events] == [GENESIS] + [e.hash for e in events[:-1]]


def test_a_writer_killed_before_the_head_leaves_a_ledger_that_still_appends(store_spec, tmp_path):
    store_code, store = store_spec
    # given a process SIGKILLed on its third append, after the event and before the head
    killed = run_child(_appender(store_code, ["a.0", "a.1", "a.2"]), kill_at="vigil.io.ledger:_write_head",
                       when="before", nth=3, timeout_s=120)
    assert killed.killed, killed.stderr
    assert len(read_events(store)) == 3 and store.get_json(HEAD_KEY)["seq"] == 1
    # then verify names the lagging head, as a warning, and nothing else
    report = verify_ledger(store)
    assert [p.kind for p in report.problems] == ["head_lagging"] and report.ok
    # when a fresh process appends three events
    fresh = run_child(_appender(store_code, ["b.0", "b.1", "b.2"]), timeout_s=120)
    # then all three succeed after the orphaned event, the chain holds every event once, and verify is clean
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == [3, 4, 5]
    _assert_chain(store, ["a.0", "a.1", "a.2", "b.0", "b.1", "b.2"])
    assert not verify_ledger(store).problems
    assert store.get_json(HEAD_KEY)["seq"] == 5


def _run_two_writers(store_code: str, *, lock_dir: str | None) -> list[list[int]]:
    start_at = time.time() + 4.0  # both interpreters are up and importing is done by then
    jobs = [_appender(store_code, [f"w{w}.{i}" for i in range(50)], lock_dir=lock_dir, start_at=start_at)
            for w in (0, 1)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda code: run_child(code, timeout_s=300), jobs))
    for result in results:
        assert result.returncode == 0, result.stderr
    return [json.loads(r.stdout) for r in results]


def test_two_writers_sharing_the_lock_append_100_events_in_one_chain(store_spec, tmp_path):
    # given two processes on one machine appending 50 events each at the same time (the runtime's set-up:
    # one lock folder per workspace)
    store_code, store = store_spec
    seqs = _run_two_writers(store_code, lock_dir=str(tmp_path / "ws"))
    # then there are 100 events, every one once, in one intact chain with the head on the newest
    assert sorted(seqs[0] + seqs[1]) == list(range(100))
    _assert_chain(store, [f"w{w}.{i}" for w in (0, 1) for i in range(50)])
    assert not verify_ledger(store).problems


def test_two_writers_without_a_lock_still_append_100_events_in_one_chain(store_spec):
    # given two processes appending to one store with no lock between them (two machines): only
    # create-if-absent (an atomic link locally, If-None-Match on S3) and walking forward keep the chain
    store_code, store = store_spec
    seqs = _run_two_writers(store_code, lock_dir=None)
    # then no race forked the chain: 100 events, each once, each linked to the one before
    assert sorted(seqs[0] + seqs[1]) == list(range(100))
    assert max(seqs[0]) > min(seqs[1]) and max(seqs[1]) > min(seqs[0]), "the two writers did not overlap"
    _assert_chain(store, [f"w{w}.{i}" for w in (0, 1) for i in range(50)])
    report = verify_ledger(store)
    assert report.ok and report.n_events == 100  # the head may lag (the later head write can be the older)
    # and one more append leaves nothing to report
    run = run_child(_appender(store_code, ["after"]), timeout_s=120)
    assert run.returncode == 0 and json.loads(run.stdout) == [100], run.stderr
    assert not verify_ledger(store).problems
