"""Resumability: a crawl killed with SIGKILL mid-run, then restarted, loses nothing and records
nothing twice; ``stop_after`` leaves the rest for the next run; one crawl per state dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support import media_factory
from tests.support.crawl_servers import fast_params, fault_server, publish_items, records, source
from vigil.crawl import crawl
from vigil.crawl.state import CrawlLocked, CrawlState
from vigil.io.store import LocalStore, S3Store

N_ITEMS = 10

_RUNNER = """
import json, logging, sys
from vigil.crawl import crawl
from vigil.io.store import LocalStore, S3Store
from vigil.config.params import CrawlParams, SourceParams
spec = json.loads(sys.argv[1])
s = spec["store"]
store = LocalStore(s["root"]) if s["kind"] == "local" else S3Store(s["endpoint"], s["access_key"], s["secret_key"], s["bucket"])
params = CrawlParams.model_validate_json(json.dumps(spec["params"]))
crawl([SourceParams(**spec["source"])], params, store, spec["state_dir"])
"""


@pytest.fixture(scope="module")
def ten_clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ten")
    return {f"i{n}": media_factory.make_clip(d, f"c{n}.mp4", seed=100 + n, n_frames=12) for n in range(N_ITEMS)}


def store_spec(store) -> dict:
    if isinstance(store, LocalStore):
        return {"kind": "local", "root": str(store.root)}
    assert isinstance(store, S3Store)
    return {"kind": "s3", "endpoint": store.endpoint, "access_key": store.access_key,
            "secret_key": store.secret_key, "bucket": store.bucket}


def test_crawl_killed_mid_run_resumes_without_loss_or_duplicates(ten_clips, store, tmp_path):
    params = fast_params(concurrency=2, per_domain_concurrency=2)
    with fault_server() as server:
        media_urls = publish_items(server, ten_clips, page_size=5, media_delay_s=0.15)
        spec = {"store": store_spec(store), "state_dir": str(tmp_path / "state"),
                "params": params.model_dump(mode="json"), "source": source(server).model_dump(mode="json")}
        # given a crawl running in its own process
        proc = subprocess.Popen([sys.executable, "-c", _RUNNER, json.dumps(spec)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # when it is killed (SIGKILL: no cleanup at all) once a few media have been served
        deadline = time.monotonic() + 60
        while len(server.hits_to("/media/")) < 4:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the crawl subprocess never reached the media"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        recorded_before_kill = len(records(store))
        with CrawlState(tmp_path / "state") as state:
            done_before_kill = {url for url in media_urls if (st := state.get(url)) and st.status == "done"}
        # and the crawl is started again with the same state dir
        report = crawl([source(server)], params, store, tmp_path / "state")
        media_hits = Counter(h.path for h in server.hits_to("/media/"))
    # then every item has exactly one sighting and one stored object, none marked duplicate
    assert proc.returncode == -signal.SIGKILL
    assert 0 < recorded_before_kill < N_ITEMS, "the kill should land mid-crawl"
    final = records(store)
    assert sorted(r.media_url for r in final) == sorted(media_urls)
    assert not any(r.duplicate or r.near_duplicate_of for r in final)
    assert len(list(store.list_keys("raw/"))) == N_ITEMS
    assert report.stored == N_ITEMS - report.already_done
    assert report.already_done >= recorded_before_kill
    # and items finished before the kill were not downloaded again; the others at most once more
    # (one recorded but not yet marked done is fetched again and found to be recorded already)
    from urllib.parse import urlsplit

    assert all(media_hits[urlsplit(url).path] == 1 for url in done_before_kill)
    assert max(media_hits.values()) <= 2
    with CrawlState(tmp_path / "state") as state:
        assert state.counts() == {"done": N_ITEMS}
        assert list(state.tmp_dir.iterdir()) == []


def test_stop_after_leaves_the_rest_for_the_next_run(ten_clips, tmp_path):
    store = LocalStore(tmp_path / "store")
    events: list[tuple[str, int, int | None]] = []
    with fault_server() as server:
        publish_items(server, dict(list(ten_clips.items())[:5]))
        first = crawl([source(server)], fast_params(concurrency=1), store, tmp_path / "state",
                      stop_after=2, progress=lambda e, d, t: events.append((e, d, t)))
        second = crawl([source(server)], fast_params(), store, tmp_path / "state")
    assert (first.discovered, first.stored) == (5, 2)
    assert (second.stored, second.already_done) == (3, 2)
    assert len(records(store)) == 5
    assert events[0] == ("discovered", 0, 5)
    assert [e for e in events if e[0] == "stored"] == [("stored", 1, 5), ("stored", 2, 5)]


def test_one_crawl_at_a_time_per_state_dir(tmp_path):
    with CrawlState(tmp_path / "state"):
        with pytest.raises(CrawlLocked):
            CrawlState(tmp_path / "state")
    CrawlState(tmp_path / "state").close()  # released on exit (and by the kernel on SIGKILL)
