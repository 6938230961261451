"""Perceptual-hash index of the stored clips, for near-duplicate detection across crawls.

The store is the truth: every stored clip has at least one ``provenance/…`` record carrying its
phash. This index is a local SQLite cache of those records (``phash.sqlite`` in the state dir) so
that a crawl does not re-read every record each run: :meth:`PhashIndex.sync` lists the provenance
keys and reads only the ones it has not seen. Deleting the cache file, or pointing a crawl at a
fresh state dir, rebuilds it from the store on the next sync.

A clip whose claimed label contradicts a close match (a fake beside its paired real) is not a
near-duplicate: by construction the two differ only where the generator's artifacts are, which is
exactly what the detector must learn, so both are kept (ingest groups them into one split).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from vigil.core.phash import video_distance
from vigil.core.records import labels_conflict
from vigil.io.store import ObjectStore

log = logging.getLogger(__name__)

PROVENANCE_PREFIX = "provenance/"


class PhashIndex:
    def __init__(self, db_path: str | Path) -> None:
        self._db = sqlite3.connect(Path(db_path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (record_key TEXT PRIMARY KEY)")
        self._db.execute("CREATE TABLE IF NOT EXISTS clips (sha256 TEXT PRIMARY KEY, phash TEXT NOT NULL,"
                         " media_key TEXT NOT NULL, label TEXT NOT NULL DEFAULT 'unknown')")
        self._clips: dict[str, tuple[str, str]] = {
            sha: (phash, label) for sha, phash, label in self._db.execute("SELECT sha256, phash, label FROM clips")}
        self._store_ids: str | None = None

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return len(self._clips)

    def sync(self, store: ObjectStore) -> int:
        """Read the provenance records this cache has not seen; returns how many were read.
        A cache made for another store (another bucket or root) is emptied first."""
        identity = json.dumps(store.describe(), sort_keys=True)
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        row = self._db.execute("SELECT v FROM meta WHERE k='store'").fetchone()
        if row is None or row[0] != identity:
            self.clear()
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('store', ?)", (identity,))
        seen = {key for (key,) in self._db.execute("SELECT record_key FROM seen")}
        read = 0
        for key in store.list_keys(PROVENANCE_PREFIX):
            if key in seen or not key.endswith(".json"):
                continue
            try:
                record = store.get_json(key)
            except (KeyError, ValueError) as exc:
                log.warning("provenance record %s unreadable, not indexed: %s", key, exc)
                continue
            self.add(key, record)
            read += 1
        return read

    def add(self, record_key: str, record: dict) -> None:
        """Index one provenance record (clips that were stored; near-duplicates point elsewhere)."""
        sha, phash, media_key = record.get("sha256"), record.get("phash"), record.get("media_key")
        label = record.get("label") or "unknown"
        if sha and phash and media_key and not record.get("near_duplicate_of"):
            self._db.execute("INSERT OR IGNORE INTO clips VALUES (?, ?, ?, ?)", (sha, phash, media_key, label))
            self._clips.setdefault(sha, (phash, label))
        self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (record_key,))

    def clear(self) -> None:
        self._db.execute("DELETE FROM seen")
        self._db.execute("DELETE FROM clips")
        self._clips.clear()

    def reserve(self, sha256: str, phash: str, label: str = "unknown") -> None:
        """Count a clip as stored before its upload finishes, so that a near-copy arriving at the
        same moment is not stored too. :meth:`release` undoes it if the upload fails."""
        self._clips.setdefault(sha256, (phash, label))

    def release(self, sha256: str) -> None:
        if self._db.execute("SELECT 1 FROM clips WHERE sha256=?", (sha256,)).fetchone() is None:
            self._clips.pop(sha256, None)

    def nearest(self, phash: str, max_distance: float, exclude: str | None = None,
                label: str = "unknown") -> tuple[str, float] | None:
        """The stored clip closest to ``phash`` within ``max_distance`` (mean bits per frame), if any.
        Clips whose known label contradicts ``label`` never match (see the module note).
        A linear scan: fine for tens of thousands of clips; hashes of another length are skipped."""
        best: tuple[str, float] | None = None
        for sha, (other, other_label) in self._clips.items():
            if sha == exclude or len(other) != len(phash) or labels_conflict(label, other_label):
                continue
            distance = video_distance(phash, other)
            if distance <= max_distance and (best is None or distance < best[1]):
                best = (sha, distance)
        return best


__all__ = ["PROVENANCE_PREFIX", "PhashIndex"]
