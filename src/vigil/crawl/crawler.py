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

Each source ends with a :class:`SourceOutcome` in the report: what was read (pages, feed entries,
links), what it led to (stored, already known from an earlier run, quarantined …) and, when it gave
nothing new, why (not reached, no media found and what was seen instead, every URL already known),
also logged as a warning, so that "nothing new" can be told from "source not reached".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from vigil.config.params import CrawlParams, SourceParams
from vigil.core.hashing import sha256_bytes, sha256_file
from vigil.core.progress import ProgressCallback
from vigil.core.records import CrawledItem, provenance_key
from vigil.core.sniff import ACCEPTED_VIDEO_TYPES, MEDIA_SUFFIXES, SNIFF_BYTES, describe_rejected, sniff_media_type
from vigil.crawl.discover import (
    MEDIA_LINK_SUFFIXES,
    Candidate,
    Claims,
    PageLinks,
    SourceClaims,
    apply_source_claims,
    classify_link,
    looks_like_feed,
    parse_claims,
    parse_feed,
    parse_html_links,
)
from vigil.crawl.fetch import Download, Fetcher, FetchError, utc_now_iso
from vigil.crawl.index import PhashIndex
from vigil.crawl.state import CrawlState
from vigil.io.media.errors import MediaError
from vigil.io.media.perceptual_hash import video_phash
from vigil.io.store import ObjectStore, put_content_addressed, quarantine

log = logging.getLogger(__name__)

CRAWLER_NAME = "vigil-crawler/0.1"

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
class SourceOutcome:
    """What one source gave in one run: what was read, what it led to, and, when it gave nothing
    new, why (``why_nothing``), so that a user can tell "nothing new" from "not reached"."""

    name: str
    url: str
    reachable: bool  # at least one page, feed or sitemap of it was read
    pages_read: int
    feed_entries: int
    links_seen: int
    candidates: int  # media URLs discovered (not already found by an earlier source in this run)
    new: int  # sightings recorded by this run: stored + duplicates + near-duplicates
    stored: int
    already_known: int  # media URLs finished by an earlier run
    quarantined: int
    skipped: int
    failed: int
    why_nothing: str | None = None  # None when the source gave something new
    shared: int = 0  # media URLs it listed that another source of the same run had already taken

    def line(self) -> str:
        """One line for the command line: what was read, and what came of it (or why nothing did)."""
        read = f"{self.pages_read} page(s), {self.feed_entries} feed entries, {self.links_seen} links"
        if self.why_nothing:
            return f"source {self.name}: {read}: nothing new: {self.why_nothing}"
        return (f"source {self.name}: {read} → {self.candidates} media URL(s): {self.stored} stored, "
                f"{self.new - self.stored} duplicate sightings, {self.already_known} already known, "
                f"{self.quarantined} quarantined, {self.skipped} skipped, {self.failed} failed")


@dataclass(frozen=True)
class NearDuplicate:
    """A clip recorded as a near-duplicate of a stored one (its bytes were not stored)."""

    media_url: str
    sha256: str
    of_sha256: str
    of_media_url: str | None  # the stored clip's media URL, when its provenance record was found


@dataclass(frozen=True)
class CrawlReport:
    """What one crawl run did. ``items`` are the sightings recorded by this run (stored clips,
    exact and near duplicates); ``already_done`` counts media URLs finished by an earlier run;
    ``sources`` says per source what was read and what came of it."""

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
    sources: tuple[SourceOutcome, ...] = ()
    near_duplicate_pairs: tuple[NearDuplicate, ...] = ()

    def summary(self) -> str:
        return (f"{self.stored} stored, {self.duplicates} duplicates, {self.near_duplicates} near-duplicates, "
                f"{self.already_done} already known, {self.quarantined} quarantined, {self.skipped} skipped, "
                f"{self.failed} failed in {self.elapsed_s:.1f}s")

    def none_reached(self) -> str | None:
        """When no source could be read at all (so nothing new came either): the line saying so, for a
        non-zero exit; None when at least one source was reached (or there were none)."""
        if not self.sources or any(s.reachable or s.new for s in self.sources):
            return None
        each = "; ".join(f"{s.name} ({s.url}): {s.why_nothing}" for s in self.sources)
        return (f"no crawl source could be reached: {each}. Check the url of each of these crawl.sources in "
                "params.yaml (and allow_private for loopback or private addresses)")


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
    by_source: dict[str, Counter] = field(default_factory=dict)  # source name → the same counters
    stats: dict[str, DiscoveryStats] = field(default_factory=dict)
    items: list[CrawledItem] = field(default_factory=list)
    problems: list[CrawlProblem] = field(default_factory=list)
    near_pairs: list[NearDuplicate] = field(default_factory=list)
    decide_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    storing: dict[str, asyncio.Event] = field(default_factory=dict)  # sha256 → set when recorded
    finished: int = 0
    discovery_done: bool = False

    def bump(self, source: str, counter: str, n: int = 1) -> None:
        self.counts[counter] += n
        self.by_source.setdefault(source, Counter())[counter] += n

    def problem(self, url: str, reason: str, detail: str) -> None:
        self.problems.append(CrawlProblem(url, reason, detail))

    def discovery_problems(self, source: str) -> Callable[[str, str, str], None]:
        """The problem callback of one source's discovery: a page, feed or metadata URL that could not
        be read; policy refusals count as skipped."""

        def problem(url: str, reason: str, detail: str) -> None:
            self.problem(url, reason, detail)
            if reason in SKIP_REASONS:
                self.bump(source, "skipped")

        return problem

    def report_progress(self, event: str) -> None:
        if self.progress is None:
            return
        total = self.counts["discovered"] if self.discovery_done else None
        try:
            self.progress(event, self.finished, total)
        except Exception:  # a broken progress bar must not stop a crawl
            log.exception("progress callback failed on %s", event)

    def outcome(self, source: SourceParams) -> SourceOutcome:
        stats, c = self.stats.get(source.name, DiscoveryStats()), self.by_source.get(source.name, Counter())
        outcome = SourceOutcome(
            name=source.name, url=source.url, reachable=stats.pages_read > 0, pages_read=stats.pages_read,
            feed_entries=stats.feed_entries, links_seen=stats.links_seen, candidates=c["discovered"],
            new=c["stored"] + c["duplicates"] + c["near_duplicates"], stored=c["stored"],
            already_known=c["already_done"], quarantined=c["quarantined"], skipped=c["skipped"], failed=c["failed"],
            shared=c["shared"])
        return replace(outcome, why_nothing=why_nothing(outcome, stats, self.params))


def why_nothing(outcome: SourceOutcome, stats: DiscoveryStats, params: CrawlParams) -> str | None:
    """Why a source gave nothing new (None when it gave something), from what its discovery saw."""
    if outcome.new:
        return None
    if not outcome.reachable:
        return f"not reached: {stats.start_problem or 'no page of it could be read'}"
    if not outcome.candidates and outcome.shared:
        return (f"its {outcome.shared} media URL(s) were all listed by another source of this run first "
                "(crawled once, under that source's name and claims)")
    if not outcome.candidates:
        seen = [line for count, line in (
            (stats.media_links == 0 and stats.links_seen,
             f"none of its {stats.links_seen} links ends like a video ({', '.join(sorted(MEDIA_LINK_SUFFIXES))})"),
            (stats.item_pages, f"{stats.item_pages} item page(s) read had no <video>, og:video or metadata media_url"),
            (stats.not_media, f"{stats.not_media} linked file(s) were neither pages nor video"),
            (stats.feed_entries, f"{stats.feed_entries} feed entries had no video enclosure"),
            (stats.too_deep, f"{stats.too_deep} sub-folder(s) deeper than crawl.max_depth={params.max_depth} not read"),
            (stats.pages_left, f"{stats.pages_left} page(s) left unread at crawl.max_pages={params.max_pages}"),
            (outcome.skipped, f"{outcome.skipped} URL(s) refused (robots.txt or the address guard)"),
        ) if count]
        return "no media found" + (": " + "; ".join(seen) if seen else " (no links, videos or feed entries)")
    if outcome.already_known == outcome.candidates:
        return f"all {outcome.candidates} media URL(s) were crawled before (already known)"
    return (f"{outcome.candidates} media URL(s), none new: {outcome.already_known} already known, "
            f"{outcome.quarantined} quarantined (not a video or undecodable), {outcome.skipped} skipped, "
            f"{outcome.failed} failed (listed below)")


# ---- discovery --------------------------------------------------------------------------------

@dataclass
class DiscoveryStats:
    """What reading one source saw, for the per-source outcome and its why-nothing line."""

    pages_read: int = 0  # listing pages, feeds and sitemaps read (not item pages)
    feed_entries: int = 0  # feed items and sitemap URLs
    links_seen: int = 0  # anchors on the listing pages
    media_links: int = 0  # anchors that end like a video: candidates, never read as pages
    folders: int = 0  # sub-folders / child sitemaps queued
    item_pages: int = 0  # item pages read (HTML)
    not_media: int = 0  # item-page links that were neither HTML nor video (a PDF, a still image)
    too_deep: int = 0  # sub-folders / child sitemaps beyond crawl.max_depth
    pages_left: int = 0  # listing pages not read: crawl.max_pages reached
    start_problem: str | None = None  # why the start URL could not be read


def source_claims(source: SourceParams) -> SourceClaims:
    return SourceClaims(label=source.label, generator=source.generator, licence=source.licence,
                        generator_from_path=source.generator_from_path)


async def discover_source(source: SourceParams, params: CrawlParams, fetcher: Fetcher,
                          problem: Callable[[str, str, str], None],
                          stats: DiscoveryStats | None = None) -> list[Candidate]:
    """All media candidates of one source, in discovery order, merged by media URL (a candidate
    backed by a metadata document wins over a bare ``<video>`` link to the same file), with the
    source's own claims filling what the site left unknown (:func:`apply_source_claims`).

    Listing pages, feeds and sitemaps are read breadth-first: ``rel=next`` pages and feed
    alternates at the same depth, sub-folders (:func:`classify_link`) and child sitemaps one level
    deeper, at most ``crawl.max_depth`` levels and ``crawl.max_pages`` pages in all."""
    stats = stats if stats is not None else DiscoveryStats()
    allow = source.allow_private
    start = source.url
    root = start
    listing: deque[tuple[str, int]] = deque([(start, 0)])
    visited: set[str] = set()
    item_pages: dict[str, str] = {}  # item page → the listing page that linked it
    too_deep: set[str] = set()
    found: dict[str, Candidate] = {}

    def add(media_url: str, page_url: str | None, claims: Claims) -> None:
        previous = found.get(media_url)
        if previous is None or (claims.from_metadata and not previous.claims.from_metadata):
            found[media_url] = Candidate(source.name, media_url, page_url, claims, allow)

    def queue(urls: Iterable[str], depth: int) -> None:
        for url in urls:
            if url in visited:
                continue
            if depth > params.max_depth:
                too_deep.add(url)
            else:
                listing.append((url, depth))

    pages = 0
    while listing and pages < params.max_pages:
        url, depth = listing.popleft()
        if url in visited:
            continue
        visited.add(url)
        pages += 1
        try:
            doc = await fetcher.get_document(url, allow_private=allow)
        except FetchError as exc:
            problem(url, exc.reason, exc.detail)
            if url == start:
                stats.start_problem = f"{exc.reason}: {exc.detail}"
            continue
        stats.pages_read += 1
        if url == start:
            root = doc.final_url  # /clips redirected to /clips/: folders are judged below the final URL
        if looks_like_feed(doc.body, doc.content_type):
            feed = parse_feed(doc.body, doc.final_url)
            stats.feed_entries += len(feed.entries)
            for line in feed.problems:
                problem(url, "bad_feed", line)
            for entry in feed.entries:
                if entry.media_url:
                    add(entry.media_url, entry.page_url, entry.claims or Claims())
                elif entry.page_url:
                    item_pages.setdefault(entry.page_url, doc.final_url)
            queue(feed.next_urls, depth)
            stats.folders += len([u for u in feed.children if u not in visited and depth < params.max_depth])
            queue(feed.children, depth + 1)
            continue
        links = parse_html_links(doc.body.decode("utf-8", errors="replace"), doc.final_url)
        queue((*links.next_urls, *links.feed_urls), depth)
        if depth > 0 and links.json_alternates:  # a sub-folder that is an item page (/posts/clip-1/)
            for media_url, claims in await _media_of_page(links, allow, fetcher, problem):
                add(media_url, doc.final_url, claims)
        else:
            for video in links.video_urls:
                add(video, doc.final_url, Claims())
        folders = []
        for anchor in links.anchors:
            stats.links_seen += 1
            kind = classify_link(anchor, doc.final_url, root)
            if kind == "media":
                stats.media_links += 1
                add(anchor, doc.final_url, Claims())
            elif kind == "folder":
                folders.append(anchor)
            elif kind == "page":
                item_pages.setdefault(anchor, doc.final_url)
        stats.folders += len([u for u in folders if u not in visited and depth < params.max_depth])
        queue(folders, depth + 1)
    _warn_cut(source, params, stats, [u for u, _ in listing if u not in visited], too_deep)

    covered = {c.page_url for c in found.values() if c.claims.from_metadata}
    to_visit = [u for u in item_pages if u not in visited and u not in covered and u not in found]
    results = await asyncio.gather(*(_read_item_page(u, allow, fetcher, problem) for u in to_visit))
    for page_url, (kind, found_here) in zip(to_visit, results):
        stats.item_pages += kind == "page"
        stats.not_media += kind == "other"
        for media_url, claims in found_here:
            # a link that was media itself: its page is the listing that linked it
            add(media_url, item_pages[page_url] if kind == "media" else page_url, claims)
    claims_of_source = source_claims(source)
    candidates = [replace(c, claims=apply_source_claims(c.claims, c.media_url, claims_of_source))
                  for c in found.values()]
    if source.max_items is not None:
        candidates = candidates[: source.max_items]
    return candidates


def _warn_cut(source: SourceParams, params: CrawlParams, stats: DiscoveryStats, unread: list[str],
              too_deep: set[str]) -> None:
    """Say when a bound stopped discovery, naming the setting that would reach the rest."""
    stats.pages_left = len(set(unread))
    stats.too_deep = len(too_deep - set(unread))
    if stats.pages_left:
        log.warning("source %s: stopped after max_pages=%d listing pages with %d more unread; raise crawl.max_pages "
                    "to reach the rest", source.name, params.max_pages, stats.pages_left)
    if stats.too_deep:
        log.warning("source %s: %d sub-folder(s)/sitemap(s) deeper than max_depth=%d not read (e.g. %s); raise "
                    "crawl.max_depth to reach them", source.name, stats.too_deep, params.max_depth, min(too_deep))


async def _read_item_page(url: str, allow: bool, fetcher: Fetcher, problem: Callable[[str, str, str], None]
                          ) -> tuple[str, list[tuple[str, Claims]]]:
    """(kind, media) of a link from a listing: ``page`` (an HTML item page: its metadata
    document's media if it links one, else its videos), ``media`` (the link is a video itself: seen
    from its first bytes, the rest is not read), ``other`` (neither: an About page, a PDF, a still
    image; nothing, silently) or ``failed`` (reported through ``problem``)."""
    try:
        doc = await fetcher.get_document(url, allow_private=allow, stop_at_media=True)
    except FetchError as exc:
        problem(url, exc.reason, exc.detail)
        return "failed", []
    sniffed = sniff_media_type(doc.body[:SNIFF_BYTES])
    if doc.media:
        is_video = sniffed in ACCEPTED_VIDEO_TYPES or (
            sniffed is None and doc.content_type.lower().startswith("video/"))
        return ("media", [(url, Claims())]) if is_video else ("other", [])
    if not (sniffed == "text/html" or (sniffed is None and "html" in doc.content_type.lower())):
        return "other", []  # JSON or XML linked from a listing is not an item page
    links = parse_html_links(doc.body.decode("utf-8", errors="replace"), doc.final_url)
    return "page", await _media_of_page(links, allow, fetcher, problem)


async def _media_of_page(links: PageLinks, allow: bool, fetcher: Fetcher,
                         problem: Callable[[str, str, str], None]) -> list[tuple[str, Claims]]:
    """Media of one item page: from its metadata document if it links one, else its videos."""
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
        run.bump(candidate.source, "already_done")
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
        run.bump(candidate.source, outcome)
        _done(run, outcome)
        log.debug("%s %s: %s", outcome, url, exc)
        return
    try:
        outcome = await _keep(run, candidate, download)
    except FetchError as exc:  # the mask of a clip failed: the whole item is retried next run
        run.state.finish(url, "failed", exc.reason, exc.detail)
        run.problem(url, exc.reason, exc.detail)
        run.bump(candidate.source, "failed")
        outcome = "failed"
    except Exception as exc:  # a store outage must not kill the other workers; retried next run
        log.exception("failed to keep %s", url)
        run.state.finish(url, "failed", "store_error", repr(exc))
        run.problem(url, "store_error", repr(exc))
        run.bump(candidate.source, "failed")
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
    run.bump(candidate.source, "quarantined")
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
            f"{describe_rejected(media_type)}: sniffed {media_type or 'unrecognised bytes'}; "
            f"server said {download.content_type or 'nothing'}")
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
                    run.bump(candidate.source, "already_done")
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
                suffix=MEDIA_SUFFIXES[media_type], content_type=media_type)
        claims = candidate.claims
        item = CrawledItem(
            sha256=sha, media_key=media_key, media_type=media_type, size=download.size,
            source=candidate.source, domain=(urlsplit(download.final_url).hostname or "").lower(),
            page_url=candidate.page_url, media_url=candidate.media_url, final_url=download.final_url,
            fetched_at=utc_now_iso(), phash=phash, generator=claims.generator, label=claims.label,  # type: ignore[arg-type]
            pair_id=claims.pair_id, prompt=claims.prompt, licence=claims.licence,
            published_at=claims.published_at, artifacts=claims.artifacts, mask_key=mask_key,
            near_duplicate_of=near, duplicate=kind == "duplicate", crawler=CRAWLER_NAME,
            truncated=claims.truncated, claimed_by=dict(claims.claimed_by),
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
    run.bump(candidate.source, counter)
    if kind == "near_duplicate" and near:
        of_url = await asyncio.to_thread(_media_url_of, run.store, near)
        run.near_pairs.append(NearDuplicate(candidate.media_url, sha, near, of_url))
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


def _media_url_of(store: ObjectStore, sha256: str) -> str | None:
    """The media URL of one recorded sighting of a stored clip (for the near-duplicate lines)."""
    for key in store.list_keys(f"provenance/{sha256[:2]}/{sha256}/"):
        try:
            return store.get_json(key).get("media_url")
        except Exception:  # a line for people; a record that cannot be read leaves it out
            log.debug("cannot read %s", key, exc_info=True)
    return None


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
    outcomes = tuple(run.outcome(s) for s in sources)
    for outcome in outcomes:
        if outcome.why_nothing and not (outcome.candidates and outcome.already_known == outcome.candidates):
            log.warning("%s (%s)", outcome.line(), outcome.url)  # a re-crawl that found only known URLs is no news
    return CrawlReport(
        discovered=c["discovered"], stored=c["stored"], duplicates=c["duplicates"],
        near_duplicates=c["near_duplicates"], quarantined=c["quarantined"], skipped=c["skipped"],
        failed=c["failed"], items=tuple(run.items), problems=tuple(run.problems),
        elapsed_s=time.monotonic() - started, already_done=c["already_done"], sources=outcomes,
        near_duplicate_pairs=tuple(run.near_pairs),
    )


async def _run(run: _Run, sources: tuple[SourceParams, ...], stop_after: int | None) -> None:
    queue: asyncio.Queue[Candidate | None] = asyncio.Queue()
    seen: set[str] = set()
    taken = 0
    sources_left = len(sources)

    async def discover(source: SourceParams) -> None:
        nonlocal sources_left
        stats = run.stats.setdefault(source.name, DiscoveryStats())
        try:
            candidates = await discover_source(source, run.params, run.fetcher, run.discovery_problems(source.name),
                                               stats)
        finally:
            sources_left -= 1
            run.discovery_done = sources_left == 0  # the total is known once the last source is in
        fresh = [c for c in candidates if c.media_url not in seen]
        seen.update(c.media_url for c in fresh)
        run.bump(source.name, "discovered", len(fresh))
        run.by_source.setdefault(source.name, Counter())["shared"] += len(candidates) - len(fresh)
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


__all__ = ["CRAWLER_NAME", "CrawlProblem", "CrawlReport", "DiscoveryStats", "NearDuplicate", "ProgressCallback",
           "QUARANTINE_REASONS", "SKIP_REASONS", "SourceOutcome", "crawl", "crawl_async", "discover_source",
           "why_nothing"]
