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


# --- a stale or broken head, strays (issue 13) -----------------------------------------------------

def _orphan_event(store, action="step.orphan"):
    """Write the next event by hand without moving the head: what a writer killed before the head leaves."""
    from vigil.io.ledger import LedgerEvent, _event_hash, read_events

    last = read_events(store)[-1]
    body = {"seq": last.seq + 1, "time": "2025-01-01T00:00:00+00:00", "action": action, "actor": "test",
            "inputs": {}, "outputs": {}, "params": {}, "code_rev": "test", "prev_hash": last.hash}
    event = LedgerEvent(**body, hash=_event_hash(body))
    store.put_json(event_key(event.seq), event.model_dump(), if_absent=True)
    return event


def test_a_stale_head_is_walked_past_and_repaired(store):
    # given a ledger whose head lags one event behind (a writer died between its event and the head)
    _fill(store, 3)
    orphan = _orphan_event(store)
    assert store.get_json(HEAD_KEY)["seq"] == 2
    # when two more events are appended
    a = append_event(store, "step.a")
    b = append_event(store, "step.b")
    # then they follow the orphan, link to it, and the head names the newest again
    assert (a.seq, a.prev_hash) == (4, orphan.hash)
    assert (b.seq, b.prev_hash) == (5, a.hash)
    assert store.get_json(HEAD_KEY) == {"seq": 5, "hash": b.hash}
    report = verify_ledger(store)
    assert report.ok and not report.problems and report.n_events == 6


def test_a_head_several_events_behind_is_walked_past(store):
    _fill(store, 2)
    for _ in range(3):
        _orphan_event(store)
    event = append_event(store, "step.after")
    assert event.seq == 5 and not verify_ledger(store).problems


def test_a_lagging_head_is_reported_as_a_warning_not_tampering(store):
    # given a head one event behind
    _fill(store, 3)
    _orphan_event(store)
    # when the ledger is verified
    report = verify_ledger(store)
    # then the lag is named, as a warning: the chain itself is intact
    assert [(p.kind, p.key) for p in report.problems] == [("head_lagging", HEAD_KEY)]
    assert report.problems[0].detail == "head names event 2, the last event is 3; the next append repairs it"
    assert report.problems[0].is_warning and report.ok and not report.errors and report.n_events == 4


def test_a_head_naming_an_earlier_event_with_a_wrong_hash_is_a_mismatch(store):
    _fill(store, 3)
    store.put_json(HEAD_KEY, {"seq": 1, "hash": "f" * 64})
    problems = verify_ledger(store).problems
    assert [p.kind for p in problems] == ["head_mismatch"] and not verify_ledger(store).ok


def test_a_stray_object_among_the_events_is_named_not_a_crash(store):
    # given a backup file dropped into the events folder
    events = _fill(store, 3)
    store.put_json("ledger/events/backup.json", {"note": "copy"})
    # when verified, then it is named as a stray and the events still verify
    report = verify_ledger(store)
    assert [(p.kind, p.key) for p in report.problems] == [("stray", "ledger/events/backup.json")]
    assert "move it out of ledger/events/" in report.problems[0].detail
    assert report.n_events == 3 and not report.ok
    # and reading and appending ignore it
    assert read_events(store) == events
    assert append_event(store, "step.next").seq == 3


@pytest.mark.parametrize("garbage", [b'{"seq": "x"}', b"\x00\xffnot json", b"[1, 2]", b'{"seq": 2}'],
                         ids=["bad-seq", "bytes", "list", "no-hash"])
def test_a_garbage_head_is_reported_and_the_next_append_repairs_it(store, garbage):
    # given a head that is not a head
    events = _fill(store, 3)
    store.put_bytes(HEAD_KEY, garbage)
    # when verified, then it is named, without a crash
    assert [(p.kind, p.key) for p in verify_ledger(store).problems] == [("unreadable", HEAD_KEY)]
    # when an event is appended, then it links to the real last event and rewrites the head
    event = append_event(store, "step.next")
    assert (event.seq, event.prev_hash) == (3, events[-1].hash)
    assert verify_ledger(store).ok and not verify_ledger(store).problems


def test_a_head_missing_altogether_falls_back_to_the_events(store):
    events = _fill(store, 2)
    store.delete(HEAD_KEY)
    assert [p.kind for p in verify_ledger(store).problems] == ["deleted"]
    event = append_event(store, "step.next")
    assert (event.seq, event.prev_hash) == (2, events[-1].hash) and not verify_ledger(store).problems


def test_losing_every_race_is_a_conflict_error(tmp_path, monkeypatch):
    # given a store where every create-if-absent is refused (a writer that always wins)
    from vigil.config.errors import ConflictError
    from vigil.io import ledger as ledger_mod
    from vigil.io.store import LocalStore, ObjectExists

    store = LocalStore(tmp_path)

    def always_taken(*args, **kwargs):
        raise ObjectExists("taken")

    monkeypatch.setattr(store, "put_json", always_taken)
    monkeypatch.setattr(ledger_mod, "APPEND_ATTEMPTS", 3)
    # when an event is appended, then a conflict (exit 7) says what happened and what to do
    with pytest.raises(ConflictError, match="lost the race .* run the step again"):
        append_event(store, "step.0")


def test_an_unreadable_last_event_stops_appends_with_a_clear_error(tmp_path):
    from vigil.io.ledger import LedgerCorrupt
    from vigil.io.store import LocalStore

    store = LocalStore(tmp_path)
    _fill(store, 2)
    store.put_bytes(event_key(2), b"garbage")
    with pytest.raises(LedgerCorrupt, match="000000000002.json cannot be read.*vigil audit verify"):
        append_event(store, "step.next")
