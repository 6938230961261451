"""Real HTTP servers on 127.0.0.1 that misbehave on purpose, for the crawler tests.

A :class:`FaultServer` maps paths to handlers and records every request (path, arrival time,
headers) so a test can assert what the crawler actually asked for and when: robots.txt honoured
(no hit on a disallowed path), rate limits (arrival times), retries (hit counts and gaps).
Handlers are small functions built by the helpers below: a static body, a sequence of responses
(503, 503, 200), a redirect, a body that stalls half-way, an enormous Content-Length, a body
without Content-Length that never ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Handler = Callable[[BaseHTTPRequestHandler, "FaultServer"], None]


@dataclass(frozen=True)
class Hit:
    path: str
    at: float  # time.monotonic() on arrival
    user_agent: str


class FaultServer:
    """A threaded HTTP/1.0 server on a free loopback port; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits.append(Hit(path, time.monotonic(), self.headers.get("User-Agent", "")))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    handler = server.routes.get(path, not_found())
                    handler(self, server)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the crawler hung up on purpose (too large, stalled)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, format: str, *args) -> None:  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> str:
        """Serve ``handler`` at ``path``; returns the absolute URL."""
        self.routes[path] = handler
        return self.url(path)

    def hits_to(self, path_prefix: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path.startswith(path_prefix)]

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()


# ---- handlers ---------------------------------------------------------------------------------

def static(body: bytes | str, *, status: int = 200, content_type: str = "application/octet-stream",
           headers: dict[str, str] | None = None, delay_s: float = 0.0) -> Handler:
    data = body.encode() if isinstance(body, str) else body

    def handle(req: BaseHTTPRequestHandler, server: FaultServer) -> None:
        if delay_s:
            server.stopping.wait(delay_s)
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

    return handle


def file(path: Path, *, content_type: str = "video/mp4", delay_s: float = 0.0) -> Handler:
    return static(Path(path).read_bytes(), content_type=content_type, delay_s=delay_s)


def html(text: str) -> Handler:
    return static(text, content_type="text/html; charset=utf-8")


def json_doc(value: object, content_type: str = "application/json") -> Handler:
    return static(json.dumps(value), content_type=content_type)


def not_found() -> Handler:
    return static("<!doctype html><title>404</title>", status=404, content_type="text/html")


def sequence(*handlers: Handler) -> Handler:
    """The n-th request gets the n-th handler; the last one repeats."""
    calls = iter(range(1_000_000))

    def handle(req: BaseHTTPRequestHandler, server: FaultServer) -> None:
        n = next(calls)
        handlers[min(n, len(handlers) - 1)](req, server)

    return handle


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    return static(f"status {code}", status=code, content_type="text/plain", headers=headers)


def redirect(location: str, code: int = 302) -> Handler:
    return static("", status=code, content_type="text/plain", headers={"Location": location})


def stall_mid_body(data: bytes, stall_s: float = 30.0) -> Handler:
    """Announce the full length, send half, then go silent (until the server stops)."""

    def handle(req: BaseHTTPRequestHandler, server: FaultServer) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "video/mp4")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data[: len(data) // 2])
        req.wfile.flush()
        server.stopping.wait(stall_s)

    return handle


def enormous_length(length: int = 50 * 1024**3, stall_s: float = 30.0) -> Handler:
    """Announce ``length`` bytes and then send nothing: a client that tried to read the body
    would hang until its read timeout, one that checks the header leaves at once."""

    def handle(req: BaseHTTPRequestHandler, server: FaultServer) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "video/mp4")
        req.send_header("Content-Length", str(length))
        req.end_headers()
        req.wfile.flush()
        server.stopping.wait(stall_s)

    return handle


def endless_body(chunk: bytes = b"\x00" * 65536, max_total: int = 512 * 1024 * 1024) -> Handler:
    """No Content-Length, bytes until the client hangs up (or ``max_total``)."""

    def handle(req: BaseHTTPRequestHandler, server: FaultServer) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "video/mp4")
        req.end_headers()
        sent = 0
        while sent < max_total and not server.stopping.is_set():
            req.wfile.write(chunk)
            sent += len(chunk)

    return handle


# ---- a tiny gallery ---------------------------------------------------------------------------

def listing_page(item_paths: list[str], next_path: str | None = None, extra: str = "") -> str:
    links = "\n".join(f'<li><a href="{p}">{p}</a></li>' for p in item_paths)
    nxt = f'<a rel="next" href="{next_path}">next</a>' if next_path else ""
    return f"<!doctype html><html><body><ul>{links}</ul>{nxt}{extra}</body></html>"


def item_page(media_path: str, metadata_path: str | None = None) -> str:
    alt = f'<link rel="alternate" type="application/json" href="{metadata_path}">' if metadata_path else ""
    return (f"<!doctype html><html><head>{alt}</head><body>"
            f'<video controls><source src="{media_path}" type="video/mp4"></video></body></html>')


def publish_items(server: FaultServer, media: dict[str, Path], *, page_size: int = 3,
                  with_metadata: bool = True, robots: str | None = "User-agent: *\nAllow: /\n",
                  media_delay_s: float = 0.0, prefix: str = "") -> list[str]:
    """Serve a paginated gallery of ``media`` (item id → file) at ``prefix + /``: listing pages
    linked by rel=next, one item page each (with a metadata JSON when ``with_metadata``), media at
    ``/media/<id><suffix>``. Returns the media URLs."""
    if robots is not None:
        server.route("/robots.txt", static(robots, content_type="text/plain"))
    ids = list(media)
    pages = [ids[i : i + page_size] for i in range(0, len(ids), page_size)] or [[]]
    media_urls = []
    for n, page_ids in enumerate(pages):
        path = f"{prefix}/" if n == 0 else f"{prefix}/page/{n + 1}"
        next_path = f"{prefix}/page/{n + 2}" if n + 1 < len(pages) else None
        server.route(path, html(listing_page([f"{prefix}/items/{i}" for i in page_ids], next_path)))
    for item_id, path in media.items():
        media_path = f"{prefix}/media/{item_id}{path.suffix}"
        media_urls.append(server.route(media_path, file(path, delay_s=media_delay_s)))
        meta_path = f"{prefix}/items/{item_id}.json" if with_metadata else None
        server.route(f"{prefix}/items/{item_id}", html(item_page(media_path, meta_path)))
        if meta_path:
            server.route(meta_path, json_doc({
                "item_id": item_id, "pair_id": f"pair-{item_id}", "generator": "testgen",
                "label": "fake", "prompt": f"a clip called {item_id}", "licence": "CC-BY-4.0",
                "published_at": "2025-01-01T00:00:00Z", "media_url": media_path, "mask_url": None,
                "artifacts": [{"type": "Texture Flicker", "t": [0.1, 0.5], "bbox": [0.1, 0.1, 0.5, 0.5]}],
            }))
    return media_urls


# ---- crawl helpers shared by the crawl tests ------------------------------------------------------

def fast_params(**overrides):
    """Small timeouts and short backoffs so that fault tests take fractions of a second."""
    from vigil.config.params import CrawlParams

    values = dict(concurrency=4, per_domain_concurrency=4, per_domain_rps=500.0, connect_timeout_s=2.0,
                  read_timeout_s=2.0, total_timeout_s=10.0, retries=2, backoff_s=0.05, max_backoff_s=2.0)
    values.update(overrides)
    return CrawlParams(**values)


def source(server: FaultServer, path: str = "/", **kw):
    """A trusted (allow_private) source at ``path`` of a loopback server."""
    from vigil.config.params import SourceParams

    return SourceParams(name="test-source", url=server.url(path), allow_private=True, **kw)


def records(store) -> list:
    """Every provenance record in the store, parsed."""
    from vigil.core.records import CrawledItem

    return [CrawledItem.model_validate(store.get_json(k)) for k in store.list_keys("provenance/")]
