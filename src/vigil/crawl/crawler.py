"""The crawl: discover media on each source, download it politely, keep what is new.

For every media URL found (see :mod:`vigil.crawl.discover`), in order:

1. the resume state says whether it is already done (then nothing is requested);
2. it is downloaded through :class:`vigil.crawl.fetch.Fetcher` (robots.txt, SSRF guard, rate and
   concurrency limits, retries, size and time limits);
3. the bytes decide what it is: empty or not a video (sniffed, never by extension or header) or
   undecodable (``video_phash`` fails) → quarantined with a reason, the crawl goes on;
4. exact duplicate (its sha256 already has a sighting) → a sighting with ``duplicate=True``;
   near-duplicate of a stored clip (phash) → a sighting with ``near_duplicate_of``, media not
   stored; otherwise the media (and its mask, if published) is stored content-addressed;
5. one :class:`~vigil.core.records.CrawledItem` per sighting at ``provenance_key(sha, sighting)``
   with ``sighting = sha256(media URL)``, so crawling the same URL again writes nothing new; its
   claims are capped (:data:`vigil.core.records.CLAIM_CAPS`) and ``truncated`` names any cut.

Writes go media → mask → record → state, so a crawl killed anywhere resumes without losing an item
or recording one twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from vigil.config.params import CrawlParams, SourceParams
from vigil.core.hashing import sha256_bytes, sha256_file
from vigil.core.progress import ProgressCallback
from vigil.core.records import CrawledItem, provenance_key
from vigil.core.sniff import ACCEPTED_VIDEO_TYPES, SNIFF_BYTES, sniff_media_type
from vigil.crawl.discover import (
    Candidate,
    Claims,
    looks_like_feed,
    parse_claims,
    parse_feed,
    parse_html_links,
    same_origin,
)
from vigil.crawl.fetch import Download, Fetcher, FetchError, utc_now_iso
from vigil.crawl.index import PhashIndex
from vigil.crawl.state import CrawlState
from vigil.io.media.errors import MediaError
from vigil.io.media.perceptual_hash import video_phash
from vigil.io.store import ObjectStore, put_content_addressed, quarantine

log = logging.getLogger(__name__)

CRAWLER_NAME = "vigil-crawler/0.1"

#: Store suffix of each accepted (sniffed) media type.
SUFFIXES: dict[str, str] = {
    "video/mp4": ".mp4", "video/webm": ".webm", "image/gif": ".gif",
    "video/quicktime": ".mov", "video/x-matroska": ".mkv",
}

#: Fetch failures that are a decision not to fetch (counted as skipped, not failed).
SKIP_REASONS = frozenset({"robots_disallowed", "blocked_address", "unsupported_url"})

#: Quarantine reasons the crawler itself gives (MediaError reasons from ``video_phash`` pass through
#: unchanged: ``truncated``, ``undecodable``, ``no_video_stream``, ``not_media`` …).
QUARANTINE_REASONS: dict[str, str] = {
    "empty": "zero bytes downloaded",
    "not_video": "the first bytes are not an accepted video container (HTML, JSON, PNG …); detail names the sniffed type",
}


@dataclass(frozen=True)
class CrawlProblem:
    """A URL that did not become a stored item: skipped, failed or quarantined, and why."""

    url: str
    reason: str
    detail: str


@dataclass(frozen=True)
class CrawlReport:
    """What one crawl run did. ``items`` are the sightings recorded by this run (stored clips,
    exact and near duplicates); ``already_done`` counts media URLs finished by an earlier run."""

    discovered: int
    stored: int
    duplicates: int
    near_duplicates: int
    quarantined: int
    skipped: int
    failed: int
    items: tuple[CrawledItem, ...]
    problems: tuple[CrawlProblem, ...]
    elapsed_s: float
    already_done: int = 0

    def summary(self) -> str:
        return (f"{self.stored} stored, {self.duplicates} duplicates, {self.near_duplicates} near-duplicates, "
                f"{self.quarantined} quarantined, {self.skipped} skipped, {self.failed} failed in {self.elapsed_s:.1f}s")


@dataclass
class _Run:
    """Mutable bookkeeping of one run (the report is frozen from it at the end)."""

    params: CrawlParams
    store: ObjectStore
    state: CrawlState
    index: PhashIndex
    fetcher: Fetcher
    progress: ProgressCallback | None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("discovered", "stored", "duplicates", "near_duplicates", "quarantined", "skipped", "failed",
         "already_done"), 0))
    items: list[CrawledItem] = field(default_factory=list)
    problems: list[CrawlProblem] = field(default_factory=list)
    decide_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    storing: dict[str, asyncio.Event] = field(default_factory=dict)  # sha256 → set when recorded
    finished: int = 0
    discovery_done: bool = False

    def problem(self, url: str, reason: str, detail: str) -> None:
        self.problems.append(CrawlProblem(url, reason, detail))

    def problem_from_discovery(self, url: str, reason: str, detail: str) -> None:
        """A page, feed or metadata URL that could not be read; policy refusals count as skipped."""
        self.problem(url, reason, detail)
        if reason in SKIP_REASONS:
            self.counts["skipped"] += 1

    def report_progress(self, event: str) -> None:
        if self.progress is None:
            return
        total = self.counts["discovered"] if self.discovery_done else None
        try:
            self.progress(event, self.finished, total)
        except Exception:  # a broken progress bar must not stop a crawl
            log.exception("progress callback failed on %s", event)


# ---- discovery --------------------------------------------------------------------------------

async def discover_source(source: SourceParams, params: CrawlParams, fetcher: Fetcher,
                          problem: Callable[[str, str, str], None]) -> list[Candidate]:
    """All media candidates of one source, in discovery order, merged by media URL (a candidate
    backed by a metadata document wins over a bare ``<video>`` link to the same file)."""
    allow = source.allow_private
    start = source.url
    listing: list[str] = [start]
    visited: set[str] = set()
    item_pages: dict[str, None] = {}
    found: dict[str, Candidate] = {}

    def add(media_url: str, page_url: str | None, claims: Claims) -> None:
        previous = found.get(media_url)
        if previous is None or (claims.from_metadata and not previous.claims.from_metadata):
            found[media_url] = Candidate(source.name, media_url, page_url, claims, allow)

    pages = 0
    while listing and pages < params.max_pages:
        url = listing.pop(0)
        if url in visited:
            continue
        visited.add(url)
        pages += 1
        try:
            doc = await fetcher.get_document(url, allow_private=allow)
        except FetchError as exc:
            problem(url, exc.reason, exc.detail)
            continue
        if looks_like_feed(doc.body, doc.content_type):
            feed = parse_feed(doc.body, doc.final_url)
            for line in feed.problems:
                problem(url, "bad_feed", line)
            for entry in feed.entries:
                if entry.media_url:
                    add(entry.media_url, entry.page_url, entry.claims or Claims())
                elif entry.page_url:
                    item_pages.setdefault(entry.page_url)
            listing.extend(u for u in feed.next_urls if u not in visited)
            continue
        links = parse_html_links(doc.body.decode("utf-8", errors="replace"), doc.final_url)
        listing.extend(u for u in (*links.next_urls, *links.feed_urls) if u not in visited)
        for video in links.video_urls:
            add(video, doc.final_url, Claims())
        for anchor in links.anchors:
            if same_origin(anchor, doc.final_url):
                item_pages.setdefault(anchor)
    if listing and pages >= params.max_pages:
        log.warning("source %s: stopped after max_pages=%d listing pages with %d more unread; raise crawl.max_pages "
                    "to reach the rest", source.name, params.max_pages, len(listing))

    covered = {c.page_url for c in found.values() if c.claims.from_metadata}
    to_visit = [u for u in item_pages if u not in visited and u not in covered]
    results = await asyncio.gather(*(_read_item_page(u, allow, fetcher, problem) for u in to_visit))
    for page_url, found_here in zip(to_visit, results):
        for media_url, claims in found_here:
            add(media_url, page_url, claims)
    candidates = list(found.values())
    if source.max_items is not None:
        candidates = candidates[: source.max_items]
    return candidates


async def _read_item_page(url: str, allow: bool, fetcher: Fetcher,
                          problem: Callable[[str, str, str], None]) -> list[tuple[str, Claims]]:
    """Media of one item page: from its metadata document if it links one, else its videos.
    Pages that turn out to be neither (an About page) give nothing, silently."""
    try:
        doc = await fetcher.get_document(url, allow_private=allow)
    except FetchError as exc:
        problem(url, exc.reason, exc.detail)
        return []
    sniffed = sniff_media_type(doc.body[:SNIFF_BYTES])
    if not (sniffed == "text/html" or (sniffed is None and "html" in doc.content_type.lower())):
        return []  # an image, a video or JSON linked from a listing is not an item page
    links = parse_html_links(doc.body.decode("utf-8", errors="replace"), doc.final_url)
    for meta_url in links.json_alternates:
        try:
            meta_doc = await fetcher.get_document(meta_url, allow_private=allow)
            meta = json.loads(meta_doc.body)
        except FetchError as exc:
            problem(meta_url, exc.reason, exc.detail)
            continue
        except ValueError as exc:
            problem(meta_url, "bad_metadata", f"not JSON: {exc}")
            continue
        if not isinstance(meta, dict):
            problem(meta_url, "bad_metadata", "metadata is not a JSON object")
            continue
        media_url, claims, issues = parse_claims(meta, meta_doc.final_url)
        for line in issues:
            problem(meta_url, "bad_metadata", line)
        if media_url is None and links.video_urls:
            media_url = links.video_urls[0]
        if media_url:
            return [(media_url, claims)]
    return [(video, Claims()) for video in links.video_urls]


# ---- one media URL ----------------------------------------------------------------------------

async def _process(run: _Run, candidate: Candidate) -> None:
    url = candidate.media_url
    previous = run.state.get(url)
    if previous is not None and previous.status == "done":
        run.counts["already_done"] += 1
        run.finished += 1
        run.report_progress("already_done")
        return
    run.state.begin(url, candidate.source)
    try:
        download = await run.fetcher.download(url, allow_private=candidate.allow_private)
    except FetchError as exc:
        outcome = "skipped" if exc.reason in SKIP_REASONS else "failed"
        run.state.finish(url, outcome, exc.reason, exc.detail)
        run.problem(url, exc.reason, exc.detail)
        run.counts[outcome] += 1
        _done(run, outcome)
        log.debug("%s %s: %s", outcome, url, exc)
        return
    try:
        outcome = await _keep(run, candidate, download)
    except FetchError as exc:  # the mask of a clip failed: the whole item is retried next run
        run.state.finish(url, "failed", exc.reason, exc.detail)
        run.problem(url, exc.reason, exc.detail)
        run.counts["failed"] += 1
        outcome = "failed"
    except Exception as exc:  # a store outage must not kill the other workers; retried next run
        log.exception("failed to keep %s", url)
        run.state.finish(url, "failed", "store_error", repr(exc))
        run.problem(url, "store_error", repr(exc))
        run.counts["failed"] += 1
        outcome = "failed"
    finally:
        download.path.unlink(missing_ok=True)
    _done(run, outcome)


def _done(run: _Run, event: str) -> None:
    run.finished += 1
    run.report_progress(event)


async def _quarantine(run: _Run, candidate: Candidate, download: Download, reason: str, detail: str) -> str:
    await asyncio.to_thread(
        quarantine, run.store, reason=reason, detail=detail, source=candidate.media_url,
        path=download.path,
        extra={"source_name": candidate.source, "page_url": candidate.page_url,
               "final_url": download.final_url, "declared_content_type": download.content_type,
               "size": download.size, "crawler": CRAWLER_NAME},
    )
    run.state.finish(candidate.media_url, "done", f"quarantined:{reason}", detail)
    run.problem(candidate.media_url, reason, detail)
    run.counts["quarantined"] += 1
    log.debug("quarantined %s: %s: %s", candidate.media_url, reason, detail)
    return "quarantined"


async def _keep(run: _Run, candidate: Candidate, download: Download) -> str:
    """Judge the downloaded bytes and record the sighting; returns the outcome event name."""
    with open(download.path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if download.size == 0:
        return await _quarantine(run, candidate, download, "empty", "zero bytes downloaded")
    media_type = sniff_media_type(head)
    if media_type not in ACCEPTED_VIDEO_TYPES:
        return await _quarantine(
            run, candidate, download, "not_video",
            f"sniffed {media_type or 'unrecognised bytes'}; server said {download.content_type or 'nothing'}")
    sha = await asyncio.to_thread(sha256_file, download.path)
    try:
        phash = await asyncio.to_thread(video_phash, download.path)
    except MediaError as exc:
        return await _quarantine(run, candidate, download, exc.reason, exc.detail)

    sighting = sha256_bytes(candidate.media_url.encode())
    record_key = provenance_key(sha, sighting)
    while True:
        async with run.decide_lock:  # one decision at a time: two copies arriving together store once
            in_progress = run.storing.get(sha)
            if in_progress is None:
                decision = await _decide(run, sha, phash, record_key, candidate.claims.label)
                if decision is None:  # this very sighting was recorded by a killed run
                    run.state.finish(candidate.media_url, "done", "recorded_earlier")
                    run.counts["already_done"] += 1
                    return "already_done"
                kind, media_key, near = decision
                if kind == "new":
                    run.storing[sha] = asyncio.Event()
                    run.index.reserve(sha, phash, candidate.claims.label)
                break
        await in_progress.wait()  # the same bytes are being stored from another URL: then decide
    mask_key = None
    try:
        if kind == "new":
            mask_key = await _store_mask(run, candidate)
            media_key, _ = await asyncio.to_thread(
                put_content_addressed, run.store, download.path, prefix="raw",
                suffix=SUFFIXES[media_type], content_type=media_type)
        claims = candidate.claims
        item = CrawledItem(
            sha256=sha, media_key=media_key, media_type=media_type, size=download.size,
            source=candidate.source, domain=(urlsplit(download.final_url).hostname or "").lower(),
            page_url=candidate.page_url, media_url=candidate.media_url, final_url=download.final_url,
            fetched_at=utc_now_iso(), phash=phash, generator=claims.generator, label=claims.label,  # type: ignore[arg-type]
            pair_id=claims.pair_id, prompt=claims.prompt, licence=claims.licence,
            published_at=claims.published_at, artifacts=claims.artifacts, mask_key=mask_key,
            near_duplicate_of=near, duplicate=kind == "duplicate", crawler=CRAWLER_NAME,
            truncated=claims.truncated,
        )
        record = item.model_dump(mode="json")
        await asyncio.to_thread(run.store.put_json, record_key, record)
        run.index.add(record_key, record)
    except BaseException:
        if kind == "new":
            run.index.release(sha)
        raise
    finally:
        if kind == "new":
            run.storing.pop(sha).set()
    run.state.finish(candidate.media_url, "done", kind)
    run.items.append(item)
    counter = {"new": "stored", "duplicate": "duplicates", "near_duplicate": "near_duplicates"}[kind]
    run.counts[counter] += 1
    log.debug("%s %s (sha256 %s…)", counter, candidate.media_url, sha[:12])
    return counter


async def _decide(run: _Run, sha: str, phash: str, record_key: str,
                  label: str = "unknown") -> tuple[str, str | None, str | None] | None:
    """(kind, media_key, near_duplicate_of) for new bytes: ``duplicate`` when the sha256 already
    has a sighting (the store says so), ``near_duplicate`` when a stored clip's phash is close,
    else ``new``. None when this exact sighting is already recorded."""
    sightings = await asyncio.to_thread(lambda: list(run.store.list_keys(f"provenance/{sha[:2]}/{sha}/")))
    if record_key in sightings:
        return None
    for key in sightings:
        earlier = await asyncio.to_thread(run.store.get_json, key)
        if earlier.get("media_key") or earlier.get("near_duplicate_of"):
            return "duplicate", earlier.get("media_key"), earlier.get("near_duplicate_of")
    match = run.index.nearest(phash, run.params.near_duplicate_distance, exclude=sha, label=label)
    if match is not None:
        return "near_duplicate", None, match[0]
    return "new", None, None


async def _store_mask(run: _Run, candidate: Candidate) -> str | None:
    """Store the clip's published masks (an npz) content-addressed; a body that is not a zip
    archive is reported and left out, the clip is still kept."""
    mask_url = candidate.claims.mask_url
    if not mask_url:
        return None
    download = await run.fetcher.download(mask_url, allow_private=candidate.allow_private)
    try:
        with open(download.path, "rb") as fh:
            magic = fh.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
            run.problem(mask_url, "bad_mask", f"not an npz (zip) archive; starts with {magic!r}")
            return None
        key, _ = await asyncio.to_thread(put_content_addressed, run.store, download.path,
                                         prefix="masks", suffix=".npz", content_type="application/x-npz")
        return key
    finally:
        download.path.unlink(missing_ok=True)


# ---- the run ----------------------------------------------------------------------------------

async def crawl_async(
    sources: Sequence[SourceParams] | None,
    params: CrawlParams,
    store: ObjectStore,
    state_dir: str | Path,
    *,
    progress: ProgressCallback | None = None,
    stop_after: int | None = None,
) -> CrawlReport:
    """Crawl ``sources`` (default: ``params.sources``) into ``store``; progress lives in ``state_dir``.

    ``progress(event, done, total)`` is called after each media URL is finished (event: stored,
    duplicates, near_duplicates, quarantined, skipped, failed, already_done) and when a source's
    discovery ends ("discovered"); ``total`` is None until every source is discovered.
    ``stop_after`` ends the run after that many media URLs were taken up (the rest stay for the
    next run). Sources must be http(s) URLs: start the zoo gallery and pass its URL for
    ``embedded:zoo``.
    """
    started = time.monotonic()
    sources = tuple(params.sources if sources is None else sources)
    for source in sources:
        if urlsplit(source.url).scheme not in ("http", "https"):
            raise ValueError(f"source {source.name!r}: {source.url!r} is not an http(s) URL; for "
                             "'embedded:zoo' start vigil.zoo.gallery.GalleryServer and crawl its URL")
    state_dir = Path(state_dir)
    with CrawlState(state_dir) as state:
        index = PhashIndex(state_dir / "phash.sqlite")
        try:
            await asyncio.to_thread(index.sync, store)
            async with Fetcher(params, state.tmp_dir) as fetcher:
                run = _Run(params, store, state, index, fetcher, progress)
                await _run(run, sources, stop_after)
        finally:
            index.close()
    c = run.counts
    return CrawlReport(
        discovered=c["discovered"], stored=c["stored"], duplicates=c["duplicates"],
        near_duplicates=c["near_duplicates"], quarantined=c["quarantined"], skipped=c["skipped"],
        failed=c["failed"], items=tuple(run.items), problems=tuple(run.problems),
        elapsed_s=time.monotonic() - started, already_done=c["already_done"],
    )


async def _run(run: _Run, sources: tuple[SourceParams, ...], stop_after: int | None) -> None:
    queue: asyncio.Queue[Candidate | None] = asyncio.Queue()
    seen: set[str] = set()
    taken = 0
    sources_left = len(sources)

    async def discover(source: SourceParams) -> None:
        nonlocal sources_left
        try:
            candidates = await discover_source(source, run.params, run.fetcher, run.problem_from_discovery)
        finally:
            sources_left -= 1
            run.discovery_done = sources_left == 0  # the total is known once the last source is in
        fresh = [c for c in candidates if c.media_url not in seen]
        seen.update(c.media_url for c in fresh)
        run.counts["discovered"] += len(fresh)
        log.info("source %s: %d media URLs discovered", source.name, len(fresh))
        for candidate in fresh:
            queue.put_nowait(candidate)
        run.report_progress("discovered")

    async def discover_all() -> None:
        try:
            await asyncio.gather(*(discover(s) for s in sources))
        finally:
            run.discovery_done = True
            queue.put_nowait(None)

    async def worker() -> None:
        nonlocal taken
        while True:
            candidate = await queue.get()
            if candidate is None:
                queue.put_nowait(None)  # let the other workers see the end too
                return
            if stop_after is not None and taken >= stop_after:
                continue
            taken += 1
            await _process(run, candidate)

    await asyncio.gather(discover_all(), *(worker() for _ in range(run.params.concurrency)))


def crawl(
    sources: Sequence[SourceParams] | None,
    params: CrawlParams,
    store: ObjectStore,
    state_dir: str | Path,
    *,
    progress: ProgressCallback | None = None,
    stop_after: int | None = None,
) -> CrawlReport:
    """Synchronous :func:`crawl_async`, for the CLI and Prefect tasks (not inside a running loop)."""
    return asyncio.run(crawl_async(sources, params, store, state_dir, progress=progress,
                                   stop_after=stop_after))


__all__ = ["CRAWLER_NAME", "CrawlProblem", "CrawlReport", "ProgressCallback", "QUARANTINE_REASONS",
           "SKIP_REASONS", "SUFFIXES", "crawl", "crawl_async", "discover_source"]
