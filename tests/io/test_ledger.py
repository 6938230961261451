"""The lineage ledger: append-only, hash-chained, and tamper-evident."""

from __future__ import annotations

import json

import pytest

from tests.support.stores import make_s3_store
from vigil.io.ledger import HEAD_KEY, append_event, event_key, read_events, verify_ledger
from vigil.io.store import ObjectLocked


def _fill(store, n=5):
    return [append_event(store, f"step.{i}", inputs={"in": f"sha-{i}"}, outputs={"out": f"sha-{i + 1}"},
                         params={"i": i}) for i in range(n)]


def _rewrite(store, key, mutate):
    doc = store.get_json(key)
    mutate(doc)
    store.put_bytes(key, json.dumps(doc).encode())


def test_events_chain_and_verify(store):
    events = _fill(store)
    assert [e.seq for e in events] == list(range(5))
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:]))
    assert read_events(store) == events
    report = verify_ledger(store)
    assert report.ok and report.n_events == 5
    assert events[0].code_rev and events[0].actor


def test_edited_event_is_named(store):
    _fill(store)
    _rewrite(store, event_key(2), lambda d: d["params"].update(i=99))
    report = verify_ledger(store)
    assert not report.ok
    assert [(p.kind, p.key) for p in report.problems] == [("edited", event_key(2))]


def test_deleted_event_is_named(store):
    _fill(store)
    store.delete(event_key(1))
    kinds = {(p.kind, p.key) for p in verify_ledger(store).problems}
    assert ("deleted", event_key(2)) in kinds


def test_deleted_newest_event_is_caught_by_the_head(store):
    _fill(store)
    store.delete(event_key(4))
    problems = verify_ledger(store).problems
    assert [p.kind for p in problems] == ["deleted"] and problems[0].key == HEAD_KEY


def test_reordered_events_are_named(store):
    _fill(store)
    a, b = store.get_bytes(event_key(1)), store.get_bytes(event_key(2))
    store.put_bytes(event_key(1), b)
    store.put_bytes(event_key(2), a)
    kinds = [p.kind for p in verify_ledger(store).problems]
    assert "reordered" in kinds


def test_rehashed_forgery_breaks_the_chain(store):
    # given a forger who edits event 2 and recomputes its own hash
    from vigil.io.ledger import LedgerEvent, _event_hash

    _fill(store)
    doc = store.get_json(event_key(2))
    doc["params"] = {"i": 1234}
    doc["hash"] = _event_hash(LedgerEvent(**doc).body())
    store.put_bytes(event_key(2), json.dumps(doc).encode())
    # then event 3 no longer links to it
    problems = verify_ledger(store).problems
    assert [(p.kind, p.key) for p in problems] == [("inserted", event_key(3))]


def test_locked_ledger_events_cannot_be_deleted_on_s3(s3_server):
    store = make_s3_store(s3_server, object_lock=True)
    append_event(store, "dataset.publish", retain_days=1)
    with pytest.raises(ObjectLocked):
        store.delete(event_key(0))
    assert verify_ledger(store).ok
