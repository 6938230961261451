"""A crawl killed with SIGKILL right after it stored a clip, then resumed in a fresh process: every raw
clip in the store ends up in exactly one crawl event (``crawl.run`` or ``crawl.reconcile``), and the
store holds what an uninterrupted crawl of the same site holds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.support import media_factory
from tests.support.crawl_servers import fault_server, publish_items
from tests.support.killpoints import run_child
from vigil.io.ledger import read_events, verify_ledger
from vigil.io.store import LocalStore

REPO = Path(__file__).resolve().parents[2]
N_ITEMS = 8
KILL_AFTER = 4  # stored media objects
STORE_MEDIA = "vigil.crawl.crawler:put_content_addressed"  # looked up in the crawler's module at each call

_CRAWL = """
import json
from vigil.config.params import parse_params
from vigil.jobs.crawl import run_crawl
from vigil.jobs.runtime import runtime_for
spec = json.loads({spec!r})
params = parse_params(spec["params"])
report = run_crawl(runtime_for(spec["workspace"], params), tuple(params.crawl.sources))
print("crawled", report.stored, report.already_done)
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {f"i{n}": media_factory.make_clip(d, f"c{n}.mp4", seed=300 + n, n_frames=12) for n in range(N_ITEMS)}


def crawl_in_child(workspace: Path, url: str, **kill) -> str:
    params = {"crawl": {"sources": [{"name": "site", "url": url, "allow_private": True}], "concurrency": 1,
                        "per_domain_concurrency": 1, "per_domain_rps": 500.0, "retries": 1, "backoff_s": 0.05,
                        "read_timeout_s": 5.0, "total_timeout_s": 20.0}}
    code = _CRAWL.format(spec=json.dumps({"workspace": str(workspace), "params": params}))
    result = run_child(code, cwd=REPO, timeout_s=180, **kill)
    if kill:
        assert result.killed, result.stderr[-3000:]
    else:
        assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def stored_listings(store: LocalStore) -> list[str]:
    """Every sha256 that a crawl event lists as stored, once per listing."""
    return [sha for e in read_events(store) if e.action in ("crawl.run", "crawl.reconcile")
            for sha in e.outputs.get("stored", [])]


def raw_shas(store: LocalStore) -> set[str]:
    return {Path(k).name.split(".", 1)[0] for k in store.list_keys("raw/")}


def provenance_keys(store: LocalStore) -> set[str]:
    return set(store.list_keys("provenance/"))


def test_a_crawl_killed_after_storing_a_clip_is_fully_recorded_once_after_resume(clips, tmp_path):
    killed_ws, clean_ws = tmp_path / "killed", tmp_path / "clean"
    killed_store, clean_store = LocalStore(killed_ws / "store"), LocalStore(clean_ws / "store")
    with fault_server() as server:
        publish_items(server, clips, page_size=3)
        url = server.url("/")
        # given a crawl killed (SIGKILL) right after it stored its 4th clip, before any ledger event
        crawl_in_child(killed_ws, url, kill_at=STORE_MEDIA, when="after", nth=KILL_AFTER)
        assert len(raw_shas(killed_store)) == KILL_AFTER
        assert stored_listings(killed_store) == []  # the lineage gap the issue found
        # when the crawl is run again in a fresh process
        crawl_in_child(killed_ws, url)
        # and the same site is crawled without interruption into another workspace
        crawl_in_child(clean_ws, url)

    # then every raw clip is listed by exactly one crawl event, and nothing else is listed
    listings = stored_listings(killed_store)
    assert sorted(Counter(listings).values()) == [1] * N_ITEMS, Counter(listings)
    assert set(listings) == raw_shas(killed_store)
    # and the clips the killed run stored are the ones its reconciliation names
    events = read_events(killed_store)
    reconciled = [e for e in events if e.action == "crawl.reconcile"]
    assert len(reconciled) == 1 and len(reconciled[0].outputs["stored"]) == KILL_AFTER
    assert all(key.startswith("provenance/") for key in reconciled[0].outputs["provenance"])
    assert [e.action for e in events] == ["crawl.reconcile", "crawl.run"]
    assert verify_ledger(killed_store).ok
    # and the store holds the very objects and records an uninterrupted crawl holds
    assert raw_shas(killed_store) == raw_shas(clean_store) and len(raw_shas(clean_store)) == N_ITEMS
    assert provenance_keys(killed_store) == provenance_keys(clean_store)
    assert [e.action for e in read_events(clean_store)] == ["crawl.run"]
    assert sorted(stored_listings(clean_store)) == sorted(raw_shas(clean_store))


def test_a_crawl_killed_before_its_event_is_reconciled_once(clips, tmp_path):
    ws, store = tmp_path / "ws", LocalStore(tmp_path / "ws" / "store")
    with fault_server() as server:
        publish_items(server, dict(list(clips.items())[:3]))
        url = server.url("/")
        # given a crawl that stored every clip and was killed just before it appended its event
        crawl_in_child(ws, url, kill_at="vigil.jobs.crawl:crawl", when="after", nth=1)
        assert len(raw_shas(store)) == 3 and read_events(store) == []
        # when the crawl runs twice more
        crawl_in_child(ws, url)
        crawl_in_child(ws, url)
    # then one reconciliation lists the three clips, and neither later run lists any again
    events = read_events(store)
    assert [e.action for e in events] == ["crawl.reconcile", "crawl.run", "crawl.run"]
    assert sorted(events[0].outputs["stored"]) == sorted(raw_shas(store))
    assert events[1].outputs["stored"] == [] and events[2].outputs["stored"] == []
