"""Crawl job: resolve the configured sources (starting the embedded gallery when asked), crawl them
into the store, and record the run in the ledger.

Lineage is reconciled on start-up rather than written ahead: a crawl stores each clip long before
its ``crawl.run`` event (one per run, at the end), so a run killed in between leaves stored clips
that no event names. Before crawling, :func:`reconcile` lists every raw clip in the store that no
``crawl.run`` or ``crawl.reconcile`` event lists in ``outputs.stored`` and records them in one
``crawl.reconcile`` event (with their provenance keys); the run's own ``crawl.run`` then lists only
clips no earlier event lists. After any resumed run every raw clip is in exactly one event, which is
what ``vigil audit verify`` checks. The store stays the truth and the ledger catches up with it: an
intent event first (``crawl.start``) would say a crawl began, not which clips it stored.

One crawl per workspace: the job holds ``workspace_lock(workspace, "crawl")`` from reconciliation
to its event, so two runs never list the same clip; a second run is refused with
:class:`~vigil.io.locks.WorkspaceBusy` (exit 7) naming the holder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from vigil.config.params import Params, SourceParams, ZooParams
from vigil.core.progress import ProgressCallback
from vigil.crawl.crawler import CrawlReport, crawl
from vigil.io.ledger import LedgerEvent, read_events
from vigil.io.locks import workspace_lock
from vigil.io.store import ObjectStore
from vigil.jobs.runtime import Runtime

log = logging.getLogger(__name__)

EMBEDDED_ZOO = "embedded:zoo"
#: The events whose ``outputs.stored`` lists the raw clips a crawl put into the store (``vigil audit verify``).
CRAWL_RUN, CRAWL_RECONCILE = "crawl.run", "crawl.reconcile"
STORED_BY = (CRAWL_RUN, CRAWL_RECONCILE)
RAW_PREFIX, PROVENANCE_PREFIX = "raw/", "provenance/"
LOCK_NAME = "crawl"


def preferred_port(cache_dir: str | Path) -> int:
    """The loopback port the embedded gallery of this workspace asks for first (20000-29999, from its
    path). The crawl state knows media by URL: on the same port a re-run finds every clip already
    done, where a new port each run meant downloading and hashing the whole gallery again.

    >>> preferred_port("/a/gallery") == preferred_port("/a/gallery") != preferred_port("/b/gallery")
    True
    """
    import hashlib

    digest = hashlib.sha256(str(Path(cache_dir).resolve()).encode()).digest()
    return 20000 + int.from_bytes(digest[:4], "big") % 10000


@contextmanager
def embedded_gallery(zoo: ZooParams, cache_dir: str | Path) -> Iterator[str]:
    """Run the zoo's gallery on loopback for the duration of the block (its :func:`preferred_port`, or a
    free one when that is taken); yields its URL."""
    from vigil.zoo.catalog import zoo_config
    from vigil.zoo.gallery import GalleryServer

    def start(port: int) -> GalleryServer:
        return GalleryServer(Path(cache_dir), zoo_config(zoo), port=port, page_size=zoo.page_size)

    try:
        server = start(preferred_port(cache_dir))
    except OSError:
        server = start(0)
    with server:
        log.info("embedded zoo gallery at %s", server.url)
        yield server.url


@contextmanager
def resolved_sources(params: Params, workspace: str | Path) -> Iterator[tuple[SourceParams, ...]]:
    """The crawl sources with ``embedded:zoo`` replaced by a running local gallery's URL."""
    sources = params.crawl.sources
    if not any(s.url == EMBEDDED_ZOO for s in sources):
        yield sources
        return
    with embedded_gallery(params.zoo, Path(workspace) / "gallery") as url:
        yield tuple(s.model_copy(update={"url": url}) if s.url == EMBEDDED_ZOO else s for s in sources)


@dataclass(frozen=True)
class Reconciled:
    """Raw clips found in the store that no crawl event listed, now listed by one ``crawl.reconcile``."""

    stored: tuple[str, ...]
    event_seq: int | None = None


def listed_clips(events: Iterable[LedgerEvent]) -> set[str]:
    """sha256 of every clip a ``crawl.run`` or ``crawl.reconcile`` event lists in ``outputs.stored``."""
    return {sha for e in events if e.action in STORED_BY
            for sha in e.outputs.get("stored") or () if isinstance(sha, str)}


def raw_clips(store: ObjectStore) -> dict[str, str]:
    """sha256 → key of every raw clip in the store (``raw/ab/<sha>.<suffix>``)."""
    return {PurePosixPath(key).name.split(".", 1)[0]: key for key in store.list_keys(RAW_PREFIX)}


def reconcile(rt: Runtime, listed: set[str]) -> Reconciled:
    """Record the raw clips no crawl event lists (a killed run's) in one ``crawl.reconcile`` event.

    ``listed`` (the clips events already list) gains them. Nothing to record, no event. Run it under
    the crawl lock: two reconciliations at once would both list the same clips.
    """
    raw = raw_clips(rt.store)
    missing = sorted(set(raw) - listed)
    if not missing:
        return Reconciled(())
    provenance = sorted(k for sha in missing for k in rt.store.list_keys(f"{PROVENANCE_PREFIX}{sha[:2]}/{sha}/"))
    event = rt.ledger.append(
        CRAWL_RECONCILE,
        inputs={"reason": "raw clips in the store that no crawl.run or crawl.reconcile event lists "
                          "(a crawl killed before its event)"},
        outputs={"stored": missing, "raw": [raw[sha] for sha in missing], "provenance": provenance},
    )
    listed.update(missing)
    log.warning("crawl: %d stored clip(s) of an interrupted crawl recorded in ledger event %d (crawl.reconcile)",
                len(missing), event.seq)
    return Reconciled(tuple(missing), event.seq)


def run_crawl(
    rt: Runtime,
    sources: tuple[SourceParams, ...],
    *,
    progress: ProgressCallback | None = None,
) -> CrawlReport:
    """Crawl ``sources`` into the store under the workspace's crawl lock; record what an interrupted
    run left unrecorded (:func:`reconcile`), then one ``crawl.run`` event naming every clip this run
    stored (and not already listed) or saw, and what each source gave (``outputs.sources``: its
    :class:`~vigil.crawl.crawler.SourceOutcome`, why-nothing line included)."""
    with workspace_lock(rt.workspace, LOCK_NAME):
        listed = listed_clips(read_events(rt.ledger.store))
        reconcile(rt, listed)
        report = crawl(sources, rt.params.crawl, rt.store, rt.workspace / "crawl", progress=progress)
        stored = {i.sha256 for i in report.items if i.media_key and not i.duplicate}
        rt.ledger.append(
            CRAWL_RUN,
            inputs={"sources": [{"name": s.name, "url": s.url} for s in sources]},
            outputs={
                "stored": sorted(stored - listed),
                "duplicates": sorted(i.sha256 for i in report.items if i.duplicate),
                "near_duplicates": sorted(f"{i.sha256}~{i.near_duplicate_of}" for i in report.items
                                          if i.near_duplicate_of),
                "quarantined": report.quarantined, "skipped": report.skipped, "failed": report.failed,
                "already_known": report.already_done,
                "sources": [asdict(outcome) for outcome in report.sources],
            },
            params={"crawl": rt.params.crawl.model_dump(mode="json", exclude={"sources"})},
        )
    return report
