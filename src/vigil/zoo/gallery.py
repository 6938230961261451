"""A local showcase web site for the zoo: what the crawler crawls when there is no internet.

It behaves like a generator's public gallery: paginated HTML (newest first, ``rel="next"``
links), a JSON Feed of new items, a page, a metadata JSON, the video and the masks per item, and
a ``robots.txt`` that keeps crawlers out of ``/private/``. A release schedule hides every item
whose ``published_at`` is after the injectable clock's now (404 everywhere, direct links too), so
a run can make a new generator appear at a chosen moment.

Clips are rendered lazily on first request into a cache folder (atomic writes, one render per
item even under concurrent requests), or all at once with :func:`prerender`.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vigil.zoo.catalog import (
    CatalogItem,
    RenderedItem,
    ZooConfig,
    build_catalog,
    isoformat,
    item_paths,
    render_item,
)
from vigil.zoo.generators import get_generator

log = logging.getLogger("vigil.zoo.gallery")

Clock = Callable[[], datetime]
DEFAULT_PAGE_SIZE = 12
DEFAULT_FEED_SIZE = 20
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\nAllow: /\n"


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def cache_folder(cache_dir: str | Path, config: ZooConfig) -> Path:
    """Where rendered items live: one subfolder per render fingerprint, so stale clips never mix."""
    return Path(cache_dir) / f"zoo-{config.render_fingerprint()}"


class ItemRenderer:
    """Renders items into the cache on demand: once per item, however many threads ask."""

    def __init__(self, cache_dir: str | Path, config: ZooConfig) -> None:
        self.config = config
        self.folder = cache_folder(cache_dir, config)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self.render_counts: Counter[str] = Counter()

    def paths(self, item: CatalogItem) -> RenderedItem:
        return item_paths(item, self.folder)

    def ensure(self, item: CatalogItem) -> RenderedItem:
        paths = self.paths(item)
        if paths.meta_path.exists():  # written last: its presence means the item is complete
            return paths
        with self._guard:
            lock = self._locks.setdefault(item.item_id, threading.Lock())
        with lock:
            if not paths.meta_path.exists():
                render_item(item, self.config, self.folder)
                with self._guard:
                    self.render_counts[item.item_id] += 1
        return paths

    def metadata(self, item: CatalogItem) -> dict[str, Any]:
        return json.loads(self.ensure(item).meta_path.read_text())


def prerender(
    cache_dir: str | Path,
    config: ZooConfig,
    progress: Callable[[int, int, CatalogItem], None] | None = None,
) -> list[RenderedItem]:
    """Render every catalog item (released or not) into the cache a gallery would use.

    ``progress(done, total, item)`` is called after each item.
    """
    renderer = ItemRenderer(cache_dir, config)
    items = build_catalog(config)
    rendered = []
    for done, item in enumerate(items, start=1):
        rendered.append(renderer.ensure(item))
        if progress is not None:
            progress(done, len(items), item)
    return rendered


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class _Site:
    """Request routing and page building, independent of the socket server (easy to reason on)."""

    def __init__(self, renderer: ItemRenderer, items: list[CatalogItem], clock: Clock,
                 page_size: int, feed_size: int) -> None:
        if page_size < 1 or feed_size < 1:
            raise ValueError("page_size and feed_size must be positive")
        self.renderer = renderer
        self.clock = clock
        self.page_size = page_size
        self.feed_size = feed_size
        self.newest_first = sorted(items, key=lambda i: (i.published_at, i.item_id), reverse=True)
        self.by_id = {i.item_id: i for i in items}

    # -- visibility
    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the gallery clock must return an aware datetime")
        return now

    def visible(self) -> list[CatalogItem]:
        now = self.now()
        return [i for i in self.newest_first if i.published_at <= now]

    def released(self, item_id: str) -> CatalogItem | None:
        item = self.by_id.get(item_id)
        return item if item is not None and item.published_at <= self.now() else None

    # -- routes
    def handle(self, path: str, base_url: str, headers: Any) -> _Response:
        route = urlsplit(path).path
        if route == "/robots.txt":
            return _text(ROBOTS_TXT, "text/plain; charset=utf-8")
        if route == "/private" or route.startswith("/private/"):
            return _text(_page("Private", "<p>Unreleased drafts. Not for crawlers.</p>"
                               '<a href="/private/drafts">drafts</a>'), "text/html; charset=utf-8")
        if route in ("/", "/index.html"):
            return self.listing(1)
        if m := re.fullmatch(r"/page/(\d+)", route):
            return self.listing(int(m.group(1)))
        if route == "/feed.json":
            return self.feed(base_url)
        if m := re.fullmatch(r"/items/([\w-]+)\.json", route):
            return self.item_json(m.group(1))
        if m := re.fullmatch(r"/items/([\w-]+)", route):
            return self.item_page(m.group(1))
        if m := re.fullmatch(r"/media/([\w-]+)\.mp4", route):
            return self.media(m.group(1), headers)
        if m := re.fullmatch(r"/masks/([\w-]+)\.npz", route):
            return self.file(m.group(1), "mask_path", "application/octet-stream")
        return _not_found()

    def listing(self, page: int) -> _Response:
        items = self.visible()
        pages = max(1, -(-len(items) // self.page_size))
        if page < 1 or page > pages:
            return _not_found()
        chunk = items[(page - 1) * self.page_size: page * self.page_size]
        head, nav = [], []
        if page > 1:
            prev_url = "/" if page == 2 else f"/page/{page - 1}"
            head.append(f'<link rel="prev" href="{prev_url}">')
            nav.append(f'<a rel="prev" href="{prev_url}">Newer</a>')
        if page < pages:
            head.append(f'<link rel="next" href="/page/{page + 1}">')
            nav.append(f'<a rel="next" href="/page/{page + 1}">Older</a>')
        cards = "\n".join(
            f'<article class="item" data-item-id="{i.item_id}">'
            f'<a href="/items/{i.item_id}">{html.escape(_title(i))}</a> '
            f'<span class="generator">{html.escape(i.generator)}</span> '
            f'<time datetime="{isoformat(i.published_at)}">{isoformat(i.published_at)}</time>'
            f"</article>"
            for i in chunk
        )
        body = (f"<h1>Vigil zoo showcase</h1><p>Page {page} of {pages}</p>\n{cards}\n"
                f'<nav>{" ".join(nav)}</nav>')
        head.append('<link rel="alternate" type="application/feed+json" href="/feed.json">')
        return _text(_page(f"Vigil zoo — page {page}", body, "\n".join(head)),
                     "text/html; charset=utf-8")

    def feed(self, base_url: str) -> _Response:
        entries = []
        for item in self.visible()[: self.feed_size]:
            meta = self.public_metadata(item)
            entries.append({
                "id": item.item_id,
                "url": f"{base_url}/items/{item.item_id}",
                "title": _title(item),
                "content_text": item.prompt,
                "date_published": isoformat(item.published_at),
                "attachments": [{"url": f"{base_url}{meta['media_url']}",
                                 "mime_type": "video/mp4"}],
                "_vigil": meta,
            })
        feed = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Vigil zoo showcase",
            "home_page_url": f"{base_url}/",
            "feed_url": f"{base_url}/feed.json",
            "items": entries,
        }
        return _json(feed, "application/feed+json")

    def public_metadata(self, item: CatalogItem) -> dict[str, Any]:
        meta = self.renderer.metadata(item)
        keys = ("item_id", "pair_id", "generator", "label", "prompt", "licence", "published_at",
                "fps", "width", "height", "duration_s", "frame_count", "scene_seed", "artifacts")
        out = {k: meta[k] for k in keys}
        out["media_url"] = f"/media/{item.item_id}.mp4"
        out["mask_url"] = f"/masks/{item.item_id}.npz"
        return out

    def item_json(self, item_id: str) -> _Response:
        item = self.released(item_id)
        return _not_found() if item is None else _json(self.public_metadata(item))

    def item_page(self, item_id: str) -> _Response:
        item = self.released(item_id)
        if item is None:
            return _not_found()
        spec = get_generator(item.generator)
        rows = "".join(f"<dt>{k}</dt><dd>{html.escape(str(v))}</dd>" for k, v in (
            ("Generator", item.generator), ("About", spec.description), ("Label", item.label),
            ("Prompt", item.prompt), ("Licence", item.licence),
            ("Published", isoformat(item.published_at)), ("Pair", item.pair_id),
        ))
        body = (f"<h1>{html.escape(_title(item))}</h1>"
                f'<video src="/media/{item.item_id}.mp4" width="{item.width}" '
                f'height="{item.height}" controls loop muted playsinline></video>'
                f"<dl>{rows}</dl>"
                f'<p><a href="/items/{item.item_id}.json">metadata</a> · '
                f'<a href="/masks/{item.item_id}.npz">masks</a> · <a href="/">home</a></p>')
        head = f'<link rel="alternate" type="application/json" href="/items/{item.item_id}.json">'
        return _text(_page(_title(item), body, head), "text/html; charset=utf-8")

    def file(self, item_id: str, which: str, content_type: str) -> _Response:
        item = self.released(item_id)
        if item is None:
            return _not_found()
        path: Path = getattr(self.renderer.ensure(item), which)
        return _Response(200, path.read_bytes(), content_type,
                         (("ETag", f'"{self.renderer.config.render_fingerprint()}-{item_id}"'),))

    def media(self, item_id: str, headers: Any) -> _Response:
        full = self.file(item_id, "media_path", "video/mp4")
        if full.status != 200:
            return full
        extra = full.headers + (("Accept-Ranges", "bytes"),)
        spec = headers.get("Range") if headers is not None else None
        if not spec:
            return _Response(200, full.body, full.content_type, extra)
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", spec.strip())
        size = len(full.body)
        if not m or (not m.group(1) and not m.group(2)):
            return _Response(416, b"", "text/plain", (("Content-Range", f"bytes */{size}"),))
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:  # suffix range: the last N bytes
            start, end = max(size - int(m.group(2)), 0), size - 1
        if start >= size or start > end:
            return _Response(416, b"", "text/plain", (("Content-Range", f"bytes */{size}"),))
        return _Response(206, full.body[start: end + 1], full.content_type,
                         extra + (("Content-Range", f"bytes {start}-{end}/{size}"),))


def _title(item: CatalogItem) -> str:
    source = "Real footage" if item.label == "real" else item.generator
    return f"{source} · {item.item_id}"


def _page(title: str, body: str, head: str = "") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>")


def _text(text: str, content_type: str) -> _Response:
    return _Response(200, text.encode(), content_type)


def _json(doc: Any, content_type: str = "application/json") -> _Response:
    return _Response(200, json.dumps(doc, indent=1).encode(), content_type)


def _not_found() -> _Response:
    return _Response(404, b"not found\n", "text/plain; charset=utf-8")


def _handler_for(site: _Site, requests: deque[tuple[str, str]], requests_lock: threading.Lock
                 ) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "VigilZoo/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
            log.debug("%s - %s", self.address_string(), format % args)

        def _respond(self, send_body: bool) -> None:
            with requests_lock:
                requests.append((self.command, self.path))
            host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
            try:
                response = site.handle(self.path, f"http://{host}", self.headers)
            except Exception:  # a render bug must not kill the server; the client sees a 500
                log.exception("error serving %s", self.path)
                response = _Response(500, b"internal error\n", "text/plain; charset=utf-8")
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(response.body)

        def do_GET(self) -> None:  # noqa: N802 (stdlib's name)
            self._respond(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._respond(send_body=False)

    return Handler


class GalleryServer:
    """The showcase on a real socket, served from a background thread. Usage::

        with GalleryServer(cache_dir, ZooConfig(pairs_per_generator=2)) as gallery:
            httpx.get(gallery.url + "/feed.json")
    """

    def __init__(
        self,
        cache_dir: str | Path,
        catalog_params: ZooConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        feed_size: int = DEFAULT_FEED_SIZE,
    ) -> None:
        self.config = catalog_params or ZooConfig()
        self.renderer = ItemRenderer(cache_dir, self.config)
        self.items = build_catalog(self.config)
        self._site = _Site(self.renderer, self.items, clock or system_clock, page_size, feed_size)
        self._requests: deque[tuple[str, str]] = deque(maxlen=100_000)
        self._requests_lock = threading.Lock()
        handler = _handler_for(self._site, self._requests, self._requests_lock)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request served so far: lets a test check what a crawler did."""
        with self._requests_lock:
            return list(self._requests)

    @property
    def render_counts(self) -> dict[str, int]:
        return dict(self.renderer.render_counts)

    def visible_items(self) -> list[CatalogItem]:
        """Items released at the clock's now, newest first (what the pages list)."""
        return self._site.visible()

    def start(self) -> GalleryServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            name="vigil-zoo-gallery", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def __enter__(self) -> GalleryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    cache_dir: str | Path,
    config: ZooConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8800,
    clock: Clock | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    feed_size: int = DEFAULT_FEED_SIZE,
    prerender_first: bool = False,
    progress: Callable[[int, int, CatalogItem], None] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run the gallery until Ctrl-C (for ``vigil zoo serve``); optionally render everything first.

    ``on_ready(url)`` is called once the socket listens, so a CLI can print where it is.
    """
    config = config or ZooConfig()
    if prerender_first:
        prerender(cache_dir, config, progress)
    server = GalleryServer(cache_dir, config, host=host, port=port, clock=clock,
                           page_size=page_size, feed_size=feed_size)
    if on_ready is not None:
        on_ready(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("gallery stopped")
