"""The lineage ledger: an append-only chain of events in the store, for auditors.

Every step appends one event: who ran what, inputs and outputs by content hash, parameters, the
code revision and the time. Each event carries the hash of the one before it, and
``ledger/head.json`` names the newest, so that :func:`verify_ledger` can say which event was
edited, deleted, inserted or reordered. Against S3 the events can sit in an object-lock bucket,
where the server itself refuses to delete them (settings: ``ledger_bucket``, ``ledger_retain_days``).
"""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from vigil.core.hashing import sha256_json
from vigil.io.store import ObjectExists, ObjectStore

EVENTS_PREFIX = "ledger/events/"
HEAD_KEY = "ledger/head.json"
GENESIS = "0" * 64


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
    kind: str  # edited | deleted | inserted | reordered | unreadable | head_mismatch
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.key}: {self.detail}"


@dataclass(frozen=True)
class LedgerReport:
    n_events: int
    problems: tuple[LedgerProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


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
    # One writer at a time on this machine; across machines the create-if-absent of each event key
    # makes a lost race fail loudly (ObjectExists) instead of forking the chain.
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


def _head(store: ObjectStore) -> tuple[int, str]:
    try:
        head = store.get_json(HEAD_KEY)
        return int(head["seq"]), str(head["hash"])  # type: ignore[index]
    except KeyError:
        keys = list(store.list_keys(EVENTS_PREFIX))
        if not keys:
            return -1, GENESIS
        last = LedgerEvent.model_validate(store.get_json(keys[-1]))
        return last.seq, last.hash


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
        for _attempt in range(5):
            seq, prev_hash = _head(store)
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
                continue  # another writer took this sequence number; re-read the head and retry
            store.put_json(HEAD_KEY, {"seq": event.seq, "hash": event.hash})
            return event
    raise RuntimeError("ledger append lost the race five times; is another writer looping?")


def read_events(store: ObjectStore) -> list[LedgerEvent]:
    """All events in order (no verification; use :func:`verify_ledger` for that)."""
    return [LedgerEvent.model_validate(store.get_json(k)) for k in store.list_keys(EVENTS_PREFIX)]


def verify_ledger(store: ObjectStore) -> LedgerReport:
    """Recompute every hash and link; name each event that was edited, deleted, inserted or moved."""
    problems: list[LedgerProblem] = []
    keys = list(store.list_keys(EVENTS_PREFIX))
    prev_hash = GENESIS
    expected_seq = 0
    last: LedgerEvent | None = None
    for position, key in enumerate(keys):
        try:
            raw = store.get_json(key)
            event = LedgerEvent.model_validate(raw)
        except Exception as exc:  # a tampered file may not even parse
            problems.append(LedgerProblem(position, key, "unreadable", f"not a ledger event: {exc}"))
            continue
        key_seq = int(Path(key).stem)
        if _event_hash(event.body()) != event.hash:
            problems.append(LedgerProblem(position, key, "edited",
                                          f"event {event.seq} ({event.action}) does not match its own hash"))
        elif event.seq != key_seq:
            problems.append(LedgerProblem(position, key, "reordered",
                                          f"event {event.seq} ({event.action}) is stored at position {key_seq}"))
        elif key_seq > expected_seq:
            missing = ", ".join(str(s) for s in range(expected_seq, key_seq))
            problems.append(LedgerProblem(position, key, "deleted", f"event(s) {missing} missing before event {key_seq}"))
        elif event.prev_hash != prev_hash:
            problems.append(LedgerProblem(position, key, "inserted",
                                          f"event {event.seq} ({event.action}) does not link to the event before it"))
        prev_hash = event.hash
        expected_seq = key_seq + 1
        last = event
    try:
        head = store.get_json(HEAD_KEY)
    except KeyError:
        head = None
    if head is not None:
        head_seq, head_hash = int(head["seq"]), str(head["hash"])  # type: ignore[index]
        if last is None or head_seq > last.seq:
            have = -1 if last is None else last.seq
            problems.append(LedgerProblem(-1, HEAD_KEY, "deleted",
                                          f"the head names event {head_seq} but the last event is {have}: the newest events were deleted"))
        elif head_seq == last.seq and head_hash != last.hash:
            problems.append(LedgerProblem(-1, HEAD_KEY, "head_mismatch",
                                          f"the head's hash for event {head_seq} differs from the stored event"))
    elif keys:
        problems.append(LedgerProblem(-1, HEAD_KEY, "deleted", "the ledger head is missing"))
    return LedgerReport(n_events=len(keys), problems=tuple(problems))
