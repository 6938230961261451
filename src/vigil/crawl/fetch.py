"""Polite, guarded HTTP fetching: the only way the crawler touches the network.

One :class:`Fetcher` per crawl holds what politeness needs across requests: robots.txt per
origin, a request-rate gate and a concurrency limit per domain, a global concurrency limit, and
retries with exponential backoff that honour ``Retry-After``. Every URL and every redirect hop
passes the SSRF guard (:mod:`vigil.crawl.netguard`) and robots.txt before a request is sent, and the
connection goes to the address that was vetted (the URL's host is kept for ``Host`` and TLS SNI),
so DNS cannot answer differently between the check and the connection.

Downloads stream to a temporary file under a size limit (an honest ``Content-Length`` that is too
big is refused before the body is read; the bytes are counted anyway, for servers that lie or send
none) and two time limits (``read_timeout_s``: a server that goes silent mid-body; ``total_timeout_s``:
the whole attempt). A failed attempt never leaves its partial file behind.

Failures are :class:`FetchError` with a stable ``reason`` code (see :data:`FETCH_REASONS`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import tempfile
import urllib.robotparser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from vigil.config.errors import ServiceError
from vigil.config.params import CrawlParams
from vigil.core.http import parse_retry_after
from vigil.core.sniff import SNIFF_BYTES, sniff_media_type
from vigil.crawl.netguard import BlockedAddress, check_url
from vigil.io.pacing import RateLimiter

log = logging.getLogger(__name__)

#: Redirect hops followed before giving up with ``too_many_redirects``.
MAX_REDIRECTS = 5
#: Largest listing page, feed, robots.txt or metadata document read into memory.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Sniffed types that are documents (read on); any other sniffed type ends a page read at its head.
_DOCUMENT_TYPES = frozenset({"text/html", "application/json", "application/xml", None})
_MEDIA_CONTENT_TYPES = ("video/", "audio/", "image/", "application/octet-stream")
_CHUNK = 64 * 1024

#: Every reason a fetch can fail with, and what it means.
FETCH_REASONS: dict[str, str] = {
    "blocked_address": "the host (or a redirect hop) resolves to a private/loopback/link-local/reserved address",
    "unresolvable": "the host name does not resolve",
    "unsupported_url": "not an http(s) URL, or no host",
    "robots_disallowed": "robots.txt of the origin disallows this URL for our user agent; never requested",
    "robots_unavailable": "robots.txt answered 5xx or could not be fetched: the whole origin counts as disallowed",
    "too_many_redirects": f"more than {MAX_REDIRECTS} redirect hops",
    "bad_redirect": "a redirect without a usable Location",
    "too_large": "Content-Length or the bytes actually sent exceed max_bytes",
    "stalled": "the server went silent for read_timeout_s (mid-body or before the headers)",
    "connect_timeout": "no connection within connect_timeout_s",
    "deadline": "the whole attempt took longer than total_timeout_s",
    "connection_error": "connection refused, reset or broken protocol",
    "http_<status>": "the final HTTP status was an error (e.g. http_404, or http_503 after all retries)",
}

T = TypeVar("T")


class FetchError(ServiceError):
    """A URL could not be fetched; ``reason`` is a stable code, ``detail`` is for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Retryable(FetchError):
    """A failure worth another attempt (429, 5xx, network trouble); ``retry_after`` in seconds."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Document:
    """A small response read into memory: a page, a feed, robots.txt, a metadata JSON."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes
    media: bool = False  # True: read with stop_at_media and it is media; ``body`` is only its head


@dataclass(frozen=True)
class Download:
    """A body streamed to ``path`` (the caller owns and removes the file)."""

    url: str
    final_url: str
    content_type: str
    path: Path
    size: int


def backoff_delay(attempt: int, params: CrawlParams, retry_after: float | None) -> float:
    """Delay before retry number ``attempt + 1``: the server's Retry-After if it gave one, else
    ``backoff_s * 2**attempt`` with up to 10 % jitter (so that workers do not retry in lockstep);
    never more than ``max_backoff_s``."""
    if retry_after is not None:
        return min(params.max_backoff_s, retry_after)
    base = params.backoff_s * (2 ** attempt)
    return min(params.max_backoff_s, base * (1.0 + 0.1 * random.random()))


class _DomainGate:
    """Per-domain politeness: at most ``concurrency`` requests in flight, and requests start at
    least ``interval`` seconds apart (the rate limit; robots.txt Crawl-delay can widen it)."""

    def __init__(self, concurrency: int, interval: float) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.pacing = RateLimiter(1.0, per_s=interval)

    @property
    def interval(self) -> float:
        return self.pacing.interval

    @interval.setter
    def interval(self, value: float) -> None:
        self.pacing.interval = value

    async def wait_turn(self) -> None:
        await self.pacing.acquire()


@dataclass(frozen=True)
class _Robots:
    parser: urllib.robotparser.RobotFileParser | None  # None: the whole origin is disallowed
    reason: str = ""
    detail: str = ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def domain_of(url: str) -> str:
    """The politeness domain of a URL: its host name, lower-cased (all ports share it)."""
    return (urlsplit(url).hostname or "").lower()


class Fetcher:
    """The crawler's HTTP client; use as ``async with Fetcher(params) as fetcher``."""

    def __init__(self, params: CrawlParams, temp_dir: str | Path | None = None) -> None:
        self.params = params
        self.temp_dir = Path(temp_dir) if temp_dir else Path(tempfile.gettempdir())
        self._global = asyncio.Semaphore(params.concurrency)
        self._gates: dict[str, _DomainGate] = {}
        self._robots: dict[str, _Robots] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        p = self.params
        timeout = httpx.Timeout(connect=p.connect_timeout_s, read=p.read_timeout_s,
                                write=p.read_timeout_s, pool=p.total_timeout_s)
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False,
            headers={"User-Agent": p.user_agent},
            limits=httpx.Limits(max_connections=p.concurrency, max_keepalive_connections=p.concurrency),
        )
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- public API -------------------------------------------------------------------------

    async def get_document(self, url: str, *, allow_private: bool,
                           max_bytes: int = MAX_DOCUMENT_BYTES, stop_at_media: bool = False) -> Document:
        """GET a page/feed/JSON into memory (at most ``max_bytes``), politely and guarded.

        ``stop_at_media``: for a link that may be a page or a video (an item page with no telling
        name): when the server says video/audio/image/octet-stream, or the first bytes sniff as
        anything but a document, stop after the head (:data:`vigil.core.sniff.SNIFF_BYTES`) and
        return it with ``media=True``; the caller downloads it as media (under ``max_bytes``) if it
        is, instead of reading up to ``max_bytes`` of video as a page."""

        async def read(response: httpx.Response, final_url: str) -> Document:
            body = bytearray()
            content_type = response.headers.get("content-type", "")
            declared_media = content_type.split(";")[0].strip().lower().startswith(_MEDIA_CONTENT_TYPES)
            if not (stop_at_media and declared_media):
                _refuse_large_content_length(response, max_bytes, url)
            sniffed = not stop_at_media
            async for chunk in response.aiter_bytes(_CHUNK):
                body += chunk
                if not sniffed and len(body) >= SNIFF_BYTES:
                    sniffed = True
                    if declared_media or sniff_media_type(bytes(body[:SNIFF_BYTES])) not in _DOCUMENT_TYPES:
                        return Document(url, final_url, response.status_code, content_type,
                                        bytes(body[:SNIFF_BYTES]), media=True)
                if len(body) > max_bytes:
                    raise FetchError("too_large", f"{url}: body exceeds {max_bytes} bytes")
            if stop_at_media and not sniffed and (declared_media or sniff_media_type(bytes(body)) not in _DOCUMENT_TYPES):
                return Document(url, final_url, response.status_code, content_type, bytes(body), media=True)
            return Document(url, final_url, response.status_code, content_type, bytes(body))

        return await self._fetch(url, allow_private, read, check_robots=True)

    async def download(self, url: str, *, allow_private: bool) -> Download:
        """Stream ``url`` to a new file under ``temp_dir`` (at most ``max_bytes``). On any failure
        the partial file is removed before the error propagates."""
        max_bytes = self.params.max_bytes

        async def save(response: httpx.Response, final_url: str) -> Download:
            _refuse_large_content_length(response, max_bytes, url)
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="dl-", suffix=".part", dir=self.temp_dir)
            path = Path(name)
            size = 0
            try:
                with os.fdopen(fd, "wb") as out:
                    async for chunk in response.aiter_bytes(_CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise FetchError("too_large", f"{url}: more than {max_bytes} bytes sent"
                                             " (Content-Length absent or wrong)")
                        out.write(chunk)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return Download(url, final_url, response.headers.get("content-type", ""), path, size)

        return await self._fetch(url, allow_private, save, check_robots=True)

    async def robots_allows(self, url: str, *, allow_private: bool) -> None:
        """Raise ``FetchError('robots_disallowed' | 'robots_unavailable')`` unless robots.txt of
        ``url``'s origin lets our user agent fetch it. robots.txt is fetched once per origin."""
        origin = _origin(url)
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            robots = self._robots.get(origin)
            if robots is None:
                robots = await self._load_robots(origin, allow_private)
                self._robots[origin] = robots
        if robots.parser is None:
            raise FetchError(robots.reason, f"{url}: {robots.detail}")
        if not robots.parser.can_fetch(self.params.user_agent, url):
            raise FetchError("robots_disallowed", f"{url} is disallowed by {origin}/robots.txt")

    # ---- internals --------------------------------------------------------------------------

    async def _load_robots(self, origin: str, allow_private: bool) -> _Robots:
        """RFC 9309: 4xx means no rules (allow all); 5xx or unreachable means disallow all."""
        robots_url = f"{origin}/robots.txt"

        async def read(response: httpx.Response, final_url: str) -> bytes:
            data = bytearray()
            async for chunk in response.aiter_bytes(_CHUNK):
                data += chunk
                if len(data) > 512 * 1024:  # RFC 9309: parse at least 500 KiB, ignore the rest
                    break
            return bytes(data)

        parser = urllib.robotparser.RobotFileParser(robots_url)
        try:
            body = await self._fetch(robots_url, allow_private, read, check_robots=False)
        except FetchError as exc:
            if exc.reason.startswith("http_4"):
                parser.parse([])
                return _Robots(parser)
            if exc.reason in {"blocked_address", "unsupported_url", "unresolvable"}:
                return _Robots(None, exc.reason, exc.detail)
            log.warning("robots.txt of %s unavailable (%s): treating the origin as disallowed", origin, exc)
            return _Robots(None, "robots_unavailable", f"{robots_url}: {exc.reason}: {exc.detail}")
        parser.parse(body.decode("utf-8", errors="replace").splitlines())
        delay = parser.crawl_delay(self.params.user_agent)
        if delay:
            gate = self._gate(domain_of(origin))
            gate.interval = max(gate.interval, min(float(delay), self.params.max_backoff_s))
        return _Robots(parser)

    def _gate(self, domain: str) -> _DomainGate:
        gate = self._gates.get(domain)
        if gate is None:
            gate = _DomainGate(self.params.per_domain_concurrency, 1.0 / self.params.per_domain_rps)
            self._gates[domain] = gate
        return gate

    async def _fetch(self, url: str, allow_private: bool,
                     consume: Callable[[httpx.Response, str], Awaitable[T]], *, check_robots: bool) -> T:
        """Attempts with retries; each attempt follows redirects under the total deadline."""
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self.params.total_timeout_s):
                    return await self._attempt(url, allow_private, consume, check_robots)
            except TimeoutError:
                raise FetchError("deadline", f"{url}: not done within total_timeout_s="
                                 f"{self.params.total_timeout_s}s") from None
            except _Retryable as exc:
                if attempt >= self.params.retries:
                    raise FetchError(exc.reason, f"{exc.detail} (after {attempt + 1} attempts)") from None
                delay = backoff_delay(attempt, self.params, exc.retry_after)
                log.info("retrying %s in %.2fs after %s (attempt %d of %d)",
                         url, delay, exc.reason, attempt + 2, self.params.retries + 1)
                attempt += 1
                await asyncio.sleep(delay)

    async def _attempt(self, url: str, allow_private: bool,
                       consume: Callable[[httpx.Response, str], Awaitable[T]], check_robots: bool) -> T:
        assert self._client is not None, "use Fetcher as an async context manager"
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                addresses = await asyncio.to_thread(check_url, current, allow_private)
            except BlockedAddress as exc:
                raise FetchError(exc.reason, exc.detail if current == url
                                 else f"{exc.detail} (redirected from {url})") from None
            if check_robots:
                await self.robots_allows(current, allow_private=allow_private)
            request = self._pinned_request(current, addresses)
            gate = self._gate(domain_of(current))
            async with gate.semaphore:
                await gate.wait_turn()
                async with self._global:
                    response = await self._send(request, current)
                    try:
                        status = response.status_code
                        if status in _REDIRECT_STATUSES:
                            location = response.headers.get("location")
                            if not location:
                                raise FetchError("bad_redirect", f"{current}: {status} without Location")
                            current = urljoin(current, location)
                            continue
                        if status == 429 or status >= 500:
                            raise _Retryable(f"http_{status}", f"{current} answered {status}",
                                             parse_retry_after(response.headers.get("retry-after")))
                        if status >= 400:
                            raise FetchError(f"http_{status}", f"{current} answered {status}")
                        return await self._consume(consume, response, current)
                    finally:
                        await response.aclose()
        raise FetchError("too_many_redirects", f"{url}: more than {MAX_REDIRECTS} redirects")

    def _pinned_request(self, url: str, addresses: list[str]) -> httpx.Request:
        """A request to ``url`` that connects to a vetted address (IPv4 first), keeping the URL's
        host for the Host header and TLS SNI/certificate checks."""
        parsed = httpx.URL(url)
        chosen = sorted(addresses, key=lambda a: ":" in a)[0]
        pinned = parsed.copy_with(host=chosen)
        headers = {"Host": parsed.netloc.decode("ascii")}
        assert self._client is not None
        return self._client.build_request("GET", pinned, headers=headers,
                                          extensions={"sni_hostname": parsed.host})

    async def _send(self, request: httpx.Request, url: str) -> httpx.Response:
        assert self._client is not None
        try:
            return await self._client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            raise _Retryable("connect_timeout", f"{url}: {exc!r}") from None
        except httpx.ReadTimeout as exc:
            raise _Retryable("stalled", f"{url}: no response within read_timeout_s="
                             f"{self.params.read_timeout_s}s ({exc!r})") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.PoolTimeout, httpx.WriteTimeout) as exc:
            raise _Retryable("connection_error", f"{url}: {exc!r}") from None

    async def _consume(self, consume: Callable[[httpx.Response, str], Awaitable[T]],
                       response: httpx.Response, url: str) -> T:
        try:
            return await consume(response, url)
        except httpx.ReadTimeout:
            raise _Retryable("stalled", f"{url}: body stalled for read_timeout_s="
                             f"{self.params.read_timeout_s}s") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Retryable("connection_error", f"{url}: body broken off: {exc!r}") from None
        except httpx.DecodingError as exc:
            raise FetchError("connection_error", f"{url}: body cannot be decoded: {exc!r}") from None


def _refuse_large_content_length(response: httpx.Response, max_bytes: int, url: str) -> None:
    """Refuse before reading a byte of the body when the server announces too much."""
    declared = response.headers.get("content-length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"{url}: Content-Length {int(declared)} exceeds max_bytes={max_bytes}")


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


__all__ = ["Document", "Download", "FETCH_REASONS", "FetchError", "Fetcher", "MAX_REDIRECTS",
           "backoff_delay", "domain_of", "utc_now_iso"]
