"""The lineage ledger: an append-only chain of events in the store, for auditors.

Every step appends one event: who ran what, inputs and outputs by content hash, parameters, the
code revision and the time. Each event carries the hash of the one before it, and
``ledger/head.json`` names the newest, so that :func:`verify_ledger` can say which event was
edited, deleted, inserted or reordered. Against S3 the events can sit in an object-lock bucket,
where the server itself refuses to delete them (settings: ``ledger_bucket``, ``ledger_retain_days``).

The events are the truth and the head is a cache of the newest one: an append starts at the head and
walks forward over any event written after it (a writer killed between its event and the head, or a
concurrent writer), links to the real last event and rewrites the head. Every append pays two small reads
for this (the head's event, and the key after it); a lagging head costs one more read per event it lags,
never a blocked ledger, and :func:`verify_ledger` reports it as a warning (``head_lagging``), not as
tampering.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import logging
import os
import random
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from vigil.config.errors import ConflictError, VigilError
from vigil.core.hashing import sha256_json
from vigil.io.store import ObjectExists, ObjectStore, StoreError

log = logging.getLogger(__name__)

EVENTS_PREFIX = "ledger/events/"
HEAD_KEY = "ledger/head.json"
GENESIS = "0" * 64
_EVENT_KEY_RE = re.compile(rf"^{re.escape(EVENTS_PREFIX)}(\d{{12}})\.json$")
# How often an append retries when another writer takes the next sequence number first.
APPEND_ATTEMPTS = 20
# Problem kinds that are not tampering: the ledger is intact, reported so that someone looks.
WARNING_KINDS = frozenset({"head_lagging"})


class LedgerBusy(ConflictError):
    """Another writer kept taking the next sequence number; the step may simply be run again."""


class LedgerCorrupt(VigilError):
    """An event an append must link to cannot be read: the chain is broken there."""


class LedgerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    time: str
    action: str
    actor: str
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    params: dict[str, Any] = {}
    code_rev: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude={"hash"})


@dataclass(frozen=True)
class LedgerProblem:
    position: int  # index in key order (0-based); -1 for the head
    key: str
    kind: str  # edited | deleted | inserted | reordered | unreadable | stray | head_mismatch | head_lagging
    detail: str

    @property
    def is_warning(self) -> bool:
        """True for kinds that leave the chain intact (a lagging head): worth a look, not tampering."""
        return self.kind in WARNING_KINDS

    def __str__(self) -> str:
        return f"{self.kind}: {self.key}: {self.detail}"


@dataclass(frozen=True)
class LedgerReport:
    n_events: int
    problems: tuple[LedgerProblem, ...]

    @property
    def errors(self) -> tuple[LedgerProblem, ...]:
        return tuple(p for p in self.problems if not p.is_warning)

    @property
    def warnings(self) -> tuple[LedgerProblem, ...]:
        return tuple(p for p in self.problems if p.is_warning)

    @property
    def ok(self) -> bool:
        """The chain is intact: no event edited, deleted, inserted, moved, unreadable or stray.
        Warnings (a lagging head, which the next append repairs) do not count."""
        return not self.errors


@dataclass(frozen=True)
class Ledger:
    """Where events go and how they are kept: the store, object-lock retention, the local lock."""

    store: ObjectStore
    retain_days: int = 0
    lock_dir: Path | None = None
    params_snapshot: str | None = None  # sha256 of the run's parameter snapshot, named in every event

    def append(self, action: str, **fields: Any) -> LedgerEvent:
        if self.params_snapshot:
            fields["params"] = {"snapshot": self.params_snapshot, **(fields.get("params") or {})}
        return append_event(self.store, action, retain_days=self.retain_days, lock_dir=self.lock_dir, **fields)


def event_key(seq: int) -> str:
    return f"{EVENTS_PREFIX}{seq:012d}.json"


def event_seq(key: str) -> int | None:
    """The sequence number an event key names, or None for anything else under the prefix (a stray)."""
    match = _EVENT_KEY_RE.match(key)
    return int(match.group(1)) if match else None


def event_keys(store: ObjectStore) -> list[str]:
    """The event keys in order, strays left out."""
    return [k for k in store.list_keys(EVENTS_PREFIX) if event_seq(k) is not None]


@lru_cache(maxsize=1)
def code_revision() -> str:
    """The git commit of the running code (+'-dirty'), or the package version outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{rev}-dirty" if dirty else rev
    except (OSError, subprocess.SubprocessError):
        from vigil import __version__

        return f"vigil-{__version__}"


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _event_hash(body: dict[str, Any]) -> str:
    return sha256_json(body)


@contextmanager
def _append_lock(lock_dir: Path | None) -> Iterator[None]:
    # One writer at a time on this machine. Across machines, the create-if-absent of each event key (an atomic
    # link on the local store, an If-None-Match PUT on S3) makes a lost race an ObjectExists, and the loser
    # walks forward and retries instead of forking the chain.
    if lock_dir is None:
        yield
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "ledger.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _parse_head(data: bytes) -> tuple[int, str] | None:
    """The head's (seq, hash), or None when the bytes are not a head (garbage is only a lost cache)."""
    try:
        head = json.loads(data)
        seq, digest = int(head["seq"]), head["hash"]
    except (ValueError, KeyError, TypeError):  # not JSON, not an object, no or bad fields
        return None
    return (seq, digest) if seq >= -1 and isinstance(digest, str) else None


def _read_head(store: ObjectStore) -> tuple[int, str] | None:
    """The head's (seq, hash); None when it is missing or not a head."""
    try:
        return _parse_head(store.get_bytes(HEAD_KEY))
    except KeyError:
        return None


def _read_event(store: ObjectStore, key: str) -> LedgerEvent:
    try:
        return LedgerEvent.model_validate(store.get_json(key))
    except KeyError:
        raise
    except Exception as exc:
        raise LedgerCorrupt(f"ledger event {store.uri(key)} cannot be read ({exc}); appends cannot link to it: "
                            "run `vigil audit verify` and restore the event from a backup") from exc


def _head(store: ObjectStore) -> tuple[int, str]:
    """Where an append starts: the head, or the last event key when the head is missing or garbage."""
    head = _read_head(store)
    if head is not None:
        return head
    keys = event_keys(store)
    if not keys:
        return -1, GENESIS
    last = _read_event(store, keys[-1])
    return last.seq, last.hash


def _last_event(store: ObjectStore) -> tuple[int, str]:
    """The real last event's (seq, hash): start at the head and walk forward while the next event exists.

    The hash is taken from the event itself; the head's own hash counts only when its event is gone."""
    seq, digest = _head(store)
    if seq >= 0:
        try:
            digest = _read_event(store, event_key(seq)).hash
        except (KeyError, LedgerCorrupt):
            pass  # the head's event is gone or unreadable: keep the head's hash, verify reports the event
    while True:
        try:
            event = _read_event(store, event_key(seq + 1))
        except KeyError:
            return seq, digest
        seq, digest = seq + 1, event.hash


def _write_head(store: ObjectStore, event: LedgerEvent) -> None:
    """Point the head at ``event``. Only a cache: a writer killed before this leaves a lagging head,
    which the next append walks past and repairs."""
    store.put_json(HEAD_KEY, {"seq": event.seq, "hash": event.hash})


def append_event(
    store: ObjectStore,
    action: str,
    *,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    actor: str | None = None,
    lock_dir: Path | None = None,
    retain_days: int = 0,
) -> LedgerEvent:
    """Append one event; returns it. Inputs/outputs should name things by content hash or URI+hash."""
    with _append_lock(lock_dir):
        for attempt in range(APPEND_ATTEMPTS):
            seq, prev_hash = _last_event(store)
            body = {
                "seq": seq + 1,
                "time": datetime.now(timezone.utc).isoformat(),
                "action": action,
                "actor": actor or default_actor(),
                "inputs": inputs or {},
                "outputs": outputs or {},
                "params": params or {},
                "code_rev": code_revision(),
                "prev_hash": prev_hash,
            }
            event = LedgerEvent(**body, hash=_event_hash(body))
            try:
                store.put_json(event_key(event.seq), event.model_dump(), if_absent=True, retain_days=retain_days)
            except ObjectExists:
                # another writer took this sequence number: walk forward past it and try the next one,
                # after a short random pause so that two writers stop colliding in step
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            try:
                _write_head(store, event)
            except (StoreError, OSError, ValueError) as exc:
                # The event is committed; failing the step now would invite a second, duplicate event.
                # A head left behind is walked past (and rewritten) by the next append.
                log.warning("ledger event %d is written but the head was not updated (%s); the next append "
                            "repairs it", event.seq, exc)
            return event
    raise LedgerBusy(f"ledger append of {action!r} to {store.uri(EVENTS_PREFIX)} lost the race for the next event "
                     f"{APPEND_ATTEMPTS} times: another writer is appending without pause; run the step again, "
                     "and look for a looping job if it keeps happening")


def read_events(store: ObjectStore, *, skip_unreadable: bool = False) -> list[LedgerEvent]:
    """All events in order (no verification; use :func:`verify_ledger` for that). Strays under the events
    prefix are left out; an unreadable event raises :class:`LedgerCorrupt` unless ``skip_unreadable``."""
    events = []
    for key in event_keys(store):
        try:
            events.append(_read_event(store, key))
        except (KeyError, LedgerCorrupt):
            if not skip_unreadable:
                raise
    return events


def find_events(store: ObjectStore, action: str, **outputs: Any) -> list[LedgerEvent]:
    """The ``action`` events whose outputs include ``outputs``, oldest first: how a step that wrote its
    effect before its event (a registry tag, a model record) finds out, on a re-run, whether a killed
    process left the event unwritten. Reads every event (one GET each on S3)."""
    return [e for e in read_events(store) if e.action == action
            and all(e.outputs.get(k) == v for k, v in outputs.items())]


def verify_ledger(store: ObjectStore) -> LedgerReport:
    """Recompute every hash and link; name each event that was edited, deleted, inserted or moved.

    Objects under the events prefix that are not event keys are ``stray``; a head that is not a head
    is ``unreadable``; a head naming an older event than the last one is ``head_lagging``, a warning
    (:attr:`LedgerProblem.is_warning`): a writer died before updating it, the next append repairs it.
    """
    problems: list[LedgerProblem] = []
    keys = list(store.list_keys(EVENTS_PREFIX))
    prev_hash = GENESIS
    expected_seq = 0
    last: LedgerEvent | None = None
    hashes: dict[int, str] = {}
    n_events = 0
    for position, key in enumerate(keys):
        key_seq = event_seq(key)
        if key_seq is None:
            problems.append(LedgerProblem(position, key, "stray", "not an event key (events are "
                                          f"{event_key(0)}, …): move it out of {EVENTS_PREFIX}"))
            continue
        n_events += 1
        try:
            raw = store.get_json(key)
            event = LedgerEvent.model_validate(raw)
        except Exception as exc:  # a tampered file may not even parse
            problems.append(LedgerProblem(position, key, "unreadable", f"not a ledger event: {exc}"))
            continue
        if _event_hash(event.body()) != event.hash:
            problems.append(LedgerProblem(position, key, "edited",
                                          f"event {event.seq} ({event.action}) does not match its own hash"))
        elif event.seq != key_seq:
            problems.append(LedgerProblem(position, key, "reordered",
                                          f"event {event.seq} ({event.action}) is stored at position {key_seq}"))
        elif key_seq > expected_seq:
            missing = ", ".join(str(s) for s in range(expected_seq, key_seq))
            problems.append(LedgerProblem(position, key, "deleted",
                                          f"event(s) {missing} missing before event {key_seq}"))
        elif event.prev_hash != prev_hash:
            problems.append(LedgerProblem(position, key, "inserted",
                                          f"event {event.seq} ({event.action}) does not link to the event before it"))
        prev_hash = event.hash
        expected_seq = key_seq + 1
        hashes[key_seq] = event.hash
        last = event
    problems.extend(_head_problems(store, last, hashes, has_events=n_events > 0))
    return LedgerReport(n_events=n_events, problems=tuple(problems))


def _head_problems(store: ObjectStore, last: LedgerEvent | None, hashes: dict[int, str], *,
                   has_events: bool) -> list[LedgerProblem]:
    """What is wrong with the head against the last readable event (``hashes``: seq -> stored hash)."""
    try:
        head = _parse_head(store.get_bytes(HEAD_KEY))
    except KeyError:
        return [LedgerProblem(-1, HEAD_KEY, "deleted", "the ledger head is missing")] if has_events else []
    if head is None:
        return [LedgerProblem(-1, HEAD_KEY, "unreadable", "the ledger head is not {seq, hash} JSON; the next "
                                                          "append rewrites it from the events")]
    head_seq, head_hash = head
    have = -1 if last is None else last.seq
    if head_seq > have:
        return [LedgerProblem(-1, HEAD_KEY, "deleted", f"the head names event {head_seq} but the last event is "
                                                       f"{have}: the newest events were deleted")]
    if head_seq in hashes and head_hash != hashes[head_seq]:
        return [LedgerProblem(-1, HEAD_KEY, "head_mismatch",
                              f"the head's hash for event {head_seq} differs from the stored event")]
    if head_seq < have:
        return [LedgerProblem(-1, HEAD_KEY, "head_lagging",
                              f"head names event {head_seq}, the last event is {have}; the next append repairs it")]
    return []
