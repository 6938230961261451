"""The S3 server goes away under a live store and comes back: clear errors, then business as usual."""

from __future__ import annotations

import time

import pytest

from vigil.io.store import RetryPolicy, S3Store, StoreError, StoreUnavailable
from vigil.testing.s3 import seaweedfs_process

# Short, so the outage costs the test a second rather than the default's few.
FAST_RETRY = RetryPolicy(attempts=3, first_delay_s=0.1, max_delay_s=0.4, connect_timeout_s=2.0, read_timeout_s=10.0)


def _wait_until_usable(store: S3Store, key: str, timeout_s: float = 60.0) -> bytes:
    """A restarted SeaweedFS answers its port before its volumes are back; poll a read until it works."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return store.get_bytes(key)
        except (StoreError, KeyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_store_outage_is_a_clear_error_and_recovery_keeps_the_data():
    with seaweedfs_process() as weed:
        server = weed.server
        # given a store that works, with an object written before the outage
        store = S3Store(server.endpoint, server.access_key, server.secret_key, "outage", retry=FAST_RETRY)
        store.put_bytes("raw/before.bin", b"written before the outage", if_absent=True)
        assert store.get_bytes("raw/before.bin") == b"written before the outage"

        # when the server stops, then every operation fails with a StoreError naming what and where
        weed.stop()
        operations = {
            "read": lambda: store.get_bytes("raw/before.bin"),
            "upload": lambda: store.put_bytes("raw/during.bin", b"x"),
            "stat": lambda: store.exists("raw/before.bin"),
            "list": lambda: list(store.list_keys("raw/")),
        }
        for op, call in operations.items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                call()
            message = str(caught.value)
            assert f"http://{server.endpoint}" in message, message
            assert "'outage'" in message and op in message and "vigil store check" in message, message
            assert "after 3 attempts" in message, message
            assert time.monotonic() - started < 10, f"{op} took too long to give up"
            assert caught.value.exit_code == 3  # a ServiceError: the CLI says "service unavailable"

        # when it is started again on the same port and data folder
        weed.start()
        # then the object from before the outage is intact and new writes work
        assert _wait_until_usable(store, "raw/before.bin") == b"written before the outage"
        store.put_bytes("raw/after.bin", b"written after the outage", if_absent=True)
        assert store.get_bytes("raw/after.bin") == b"written after the outage"
        assert list(store.list_keys("raw/")) == ["raw/after.bin", "raw/before.bin"]


def _stop_server_at(weed, method, nth: int):
    """``method`` (a bound store method), which stops the S3 server just before its ``nth`` call."""
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            weed.stop()
        return method(*args, **kwargs)

    return wrapper


def test_ingest_with_the_store_gone_mid_run_fails_clearly_then_resumes_to_the_full_version(tmp_path):
    from tests.jobs.test_ingest import add_good_pairs, params
    from vigil.io.ledger import verify_ledger
    from vigil.jobs.ingest import ingest
    from vigil.jobs.runtime import runtime_for

    with seaweedfs_process() as weed:
        server = weed.server
        store = S3Store(server.endpoint, server.access_key, server.secret_key, "midingest", retry=FAST_RETRY)
        ids = add_good_pairs(store, tmp_path / "media")
        rt = runtime_for(tmp_path / "ws", params(), store=store)
        # given an ingest whose S3 server stops while it downloads its third clip
        download = store.download
        store.download = _stop_server_at(weed, download, 3)
        # when it runs, then it fails with the store's error (exit 3), and no clip is judged for it
        with pytest.raises(StoreUnavailable) as caught:
            ingest(rt)
        assert caught.value.exit_code == 3
        store.download = download
        assert not list((tmp_path / "ws" / "ingest" / "samples").glob("*/quarantined.json"))
        # when the server is back and ingest runs again
        weed.start()
        _wait_until_usable(store, f"params/{rt.params_hash}.yaml")
        report = ingest(rt)
        # then the version holds every clip, nothing is quarantined, and the ledger verifies
        assert report.status == "published" and report.n_samples == len(ids), report.summary()
        assert not report.problems
        assert verify_ledger(store).ok


def test_a_crawl_with_the_store_gone_mid_run_fails_clearly_then_resumes_to_every_clip(tmp_path):
    from tests.support import media_factory
    from tests.support.crawl_servers import fault_server, publish_items
    from vigil.config.params import parse_params
    from vigil.io.ledger import read_events, verify_ledger
    from vigil.jobs.audit import audit_verify
    from vigil.jobs.crawl import run_crawl
    from vigil.jobs.runtime import runtime_for

    clips = {f"i{n}": media_factory.make_clip(tmp_path / "clips", f"c{n}.mp4", seed=500 + n, n_frames=12)
             for n in range(6)}
    with seaweedfs_process() as weed, fault_server() as site:
        publish_items(site, clips, page_size=3)
        server = weed.server
        store = S3Store(server.endpoint, server.access_key, server.secret_key, "midcrawl", retry=FAST_RETRY)
        params = parse_params({"crawl": {"sources": [{"name": "site", "url": site.url("/"), "allow_private": True}],
                                         "concurrency": 1, "per_domain_concurrency": 1, "retries": 0}})
        rt = runtime_for(tmp_path / "ws", params, store=store)
        # given a crawl whose S3 server stops as it stores its third clip
        put_file = store.put_file
        store.put_file = _stop_server_at(weed, put_file, 3)
        # when it runs, then it ends in the store's error (exit 3), not a traceback of the transport
        with pytest.raises(StoreError) as caught:
            run_crawl(rt, tuple(params.crawl.sources))
        assert caught.value.exit_code == 3
        store.put_file = put_file
        # when the server is back and the crawl runs again
        weed.start()
        _wait_until_usable(store, f"params/{rt.params_hash}.yaml")
        run_crawl(rt, tuple(params.crawl.sources))
        # then every clip is stored once and listed once by the ledger, which verifies
        raw = {k.rsplit("/", 1)[-1].split(".", 1)[0] for k in store.list_keys("raw/")}
        listed = [sha for e in read_events(store) if e.action in ("crawl.run", "crawl.reconcile")
                  for sha in e.outputs.get("stored", [])]
        assert len(raw) == len(clips) and sorted(listed) == sorted(raw)
        assert verify_ledger(store).ok
        assert not audit_verify(rt).errors
