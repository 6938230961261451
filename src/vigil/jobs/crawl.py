"""Crawl job: resolve the configured sources (starting the embedded gallery when asked), crawl them
into the store, and record the run in the ledger."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vigil.config.params import Params, SourceParams, ZooParams
from vigil.core.progress import ProgressCallback
from vigil.crawl.crawler import CrawlReport, crawl
from vigil.jobs.runtime import Runtime

log = logging.getLogger(__name__)

EMBEDDED_ZOO = "embedded:zoo"


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


def run_crawl(
    rt: Runtime,
    sources: tuple[SourceParams, ...],
    *,
    progress: ProgressCallback | None = None,
) -> CrawlReport:
    """Crawl ``sources`` into the store; one ledger event names every clip stored or seen."""
    report = crawl(sources, rt.params.crawl, rt.store, rt.workspace / "crawl", progress=progress)
    rt.ledger.append(
        "crawl.run",
        inputs={"sources": [{"name": s.name, "url": s.url} for s in sources]},
        outputs={
            "stored": sorted(i.sha256 for i in report.items if i.media_key and not i.duplicate),
            "duplicates": sorted(i.sha256 for i in report.items if i.duplicate),
            "near_duplicates": sorted(f"{i.sha256}~{i.near_duplicate_of}" for i in report.items if i.near_duplicate_of),
            "quarantined": report.quarantined, "skipped": report.skipped, "failed": report.failed,
        },
        params={"crawl": rt.params.crawl.model_dump(mode="json", exclude={"sources"})},
    )
    return report
