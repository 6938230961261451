"""A real-world-shaped media site on 127.0.0.1, for crawl tests and the end-to-end test.

:func:`real_site` writes small real clips (a few kB each, made by :mod:`tests.support.media_factory`)
into a temporary folder, one folder per generator plus a ``real`` folder of camera-like clips, with
names that have spaces in them, and serves the folder with Python's own
:class:`http.server.SimpleHTTPRequestHandler` (its real directory listing, percent-encoded links and
all) in a thread. The same clips are offered in every shape a crawl source meets, each with its own
start URL (:class:`RealSite`):

``listing``
    ``/clips/``: http.server's directory listing, linking the sub-folders ``gen-a/``, ``gen-b/``,
    ``real/``, whose listings link the clip files (nested listings, depth 1).
``autoindex``
    ``/nginx/clips/``: the same tree listed the way nginx ``autoindex`` does (a ``<pre>`` of links
    with ``../`` first), with the ``?C=N;O=D`` sort links Apache/fancyindex listings add; its files
    are the same bytes at other URLs (``/nginx/clips/gen-a/clip%201.mp4``).
``sitemap`` / ``sitemap_index``
    ``/sitemap-video.xml``: a Google video sitemap (``<video:content_loc>`` per clip, ``<loc>`` its
    folder page); ``/sitemap.xml``: a sitemap index of two child sitemaps (fakes, reals).
``rss``
    ``/feed.rss``: RSS 2.0 with one ``<enclosure>`` per clip (no label or generator in it).

None of the shapes claims a label or generator, as on the real web: a source gets them from its own
settings (``label: fake`` and :data:`GENERATOR_FROM_PATH`; the ``real`` folder's name makes those
clips real). The server records every request (:attr:`RealSite.requests`, ``(method, path)``), so a
test can assert that no clip was fetched as a page.

Usage::

    with real_site(tmp_path) as site:
        params = site.source("web", "listing")          # a SourceParams with the claims set
        report = crawl([params], crawl_params, store, state_dir)
        assert {i.media_url for i in report.items} == set(site.media_urls("listing"))

Self-contained (the standard library, media_factory and vigil.config for :meth:`RealSite.source`).
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from tests.support import media_factory

#: ``crawl.sources[i].generator_from_path`` that takes a clip's folder name as its generator.
GENERATOR_FROM_PATH = r"/(?P<generator>[^/]+)/[^/]+$"
#: The start-URL path of each shape.
SHAPES = {"listing": "/clips/", "autoindex": "/nginx/clips/", "sitemap": "/sitemap-video.xml",
          "sitemap_index": "/sitemap.xml", "rss": "/feed.rss"}
_MIME = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif", ".mkv": "video/x-matroska",
         ".avi": "video/x-msvideo", ".ts": "video/mp2t", ".mov": "video/quicktime"}

#: (folder, file name, seed, maker) of every clip: two generators and camera footage.
LAYOUT: tuple[tuple[str, str, int, str], ...] = (
    ("gen-a", "clip 1.mp4", 101, "make_mp4"),
    ("gen-a", "clip 2.webm", 102, "make_webm"),
    ("gen-b", "take one.gif", 103, "make_gif"),
    ("gen-b", "take two.mkv", 104, "make_mkv"),
    ("real", "camera 01.mp4", 105, "make_mp4"),
    ("real", "camera 02.avi", 106, "make_avi"),
)


@dataclass(frozen=True)
class ExpectedClip:
    """One clip of the site and what a source with :data:`GENERATOR_FROM_PATH` and ``label: fake`` claims."""

    path: str  # relative to /clips/, not encoded: "gen-a/clip 1.mp4"
    generator: str  # the folder name: "gen-a", "gen-b" or "real"
    label: str  # "real" for the real folder, else "fake"
    sha256: str
    size: int


@dataclass
class RealSite:
    """A running site: its base URL, one start URL per shape, the clips, and the request log."""

    root: Path
    base_url: str  # "http://127.0.0.1:<port>"
    clips: tuple[ExpectedClip, ...]
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, decoded path + "?query" if any)

    def url(self, shape: str) -> str:
        """Start URL of a shape (a key of :data:`SHAPES`)."""
        return self.base_url + SHAPES[shape]

    def media_url(self, clip: ExpectedClip, shape: str = "listing") -> str:
        """The URL a crawler meets for ``clip`` in ``shape``: percent-encoded, as the listing links it.
        Every shape but ``autoindex`` links the files under /clips/."""
        prefix = "/nginx/clips/" if shape == "autoindex" else "/clips/"
        return self.base_url + prefix + quote(clip.path)

    def media_urls(self, shape: str = "listing") -> dict[str, ExpectedClip]:
        return {self.media_url(c, shape): c for c in self.clips}

    def requested(self, path_prefix: str = "/") -> list[str]:
        """Decoded paths (with ``?query`` when there was one) requested under ``path_prefix``, in order,
        repeats kept."""
        return [p for _, p in self.requests if p.startswith(path_prefix)]

    def source(self, name: str, shape: str, **overrides):
        """A trusted (loopback) SourceParams for ``shape`` claiming label fake and the folder as generator."""
        from vigil.config.params import SourceParams

        values = dict(name=name, url=self.url(shape), allow_private=True, label="fake",
                      generator_from_path=GENERATOR_FROM_PATH, licence="CC-BY-4.0")
        values.update(overrides)
        return SourceParams(**values)


def build_site(root: Path) -> tuple[ExpectedClip, ...]:
    """Write the clips, robots.txt, the sitemaps and the RSS feed under ``root``; returns the clips."""
    clips_dir = root / "clips"
    expected = []
    for folder, name, seed, maker in LAYOUT:
        (clips_dir / folder).mkdir(parents=True, exist_ok=True)
        size = {"width": 80, "height": 60} if maker == "make_gif" else {}  # GIF is uncompressed-ish: keep it small
        made = getattr(media_factory, maker)(clips_dir / folder, name, seed=seed, **size)
        data = made.read_bytes()
        expected.append(ExpectedClip(f"{folder}/{name}", folder, "real" if folder == "real" else "fake",
                                     hashlib.sha256(data).hexdigest(), len(data)))
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    (root / "nginx").mkdir(exist_ok=True)  # served from clips/ by the handler
    clips = tuple(expected)
    _write_feeds(root, clips)
    return clips


def _write_feeds(root: Path, clips: tuple[ExpectedClip, ...]) -> None:
    """Sitemaps and RSS with root-relative links: a crawler resolves them against the document's URL."""

    def sitemap(selection: list[ExpectedClip]) -> str:
        urls = "".join(
            f"<url><loc>/clips/{quote(c.path.rsplit('/', 1)[0])}/</loc><video:video>"
            f"<video:title>{html.escape(c.path)}</video:title>"
            f"<video:content_loc>/clips/{quote(c.path)}</video:content_loc>"
            f"<video:publication_date>2025-01-0{n + 1}T00:00:00+00:00</video:publication_date>"
            f"</video:video></url>" for n, c in enumerate(selection))
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
                ' xmlns:video="http://www.google.com/schemas/sitemap-video/1.1">' + urls + "</urlset>\n")

    (root / "sitemap-video.xml").write_text(sitemap(list(clips)))
    (root / "sitemap-fake.xml").write_text(sitemap([c for c in clips if c.label == "fake"]))
    (root / "sitemap-real.xml").write_text(sitemap([c for c in clips if c.label == "real"]))
    (root / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<sitemap><loc>/sitemap-fake.xml</loc></sitemap><sitemap><loc>/sitemap-real.xml</loc></sitemap>"
        "</sitemapindex>\n")
    items = "".join(
        f"<item><title>{html.escape(c.path)}</title><link>/clips/{quote(c.path.rsplit('/', 1)[0])}/</link>"
        f'<enclosure url="/clips/{quote(c.path)}" length="{c.size}" type="{_MIME[Path(c.path).suffix]}"/>'
        f"<guid>{c.sha256[:16]}</guid></item>" for c in clips)
    (root / "feed.rss").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>clips</title>'
        f"<link>/</link><description>test clips</description>{items}</channel></rss>\n")


def nginx_autoindex(directory: Path, url_path: str) -> str:
    """An nginx ``autoindex on;`` page for ``directory`` (``../`` first, folders then files, a
    ``<pre>`` of links with dates and sizes), with Apache-style ``?C=N;O=D`` sort links on top."""
    entries = sorted(directory.iterdir(), key=lambda p: (not p.is_dir(), p.name))
    rows = ['<a href="../">../</a>']
    for entry in entries:
        name = entry.name + ("/" if entry.is_dir() else "")
        stamp = email.utils.formatdate(entry.stat().st_mtime, usegmt=True)
        size = "-" if entry.is_dir() else str(entry.stat().st_size)
        rows.append(f'<a href="{quote(name)}">{html.escape(name)}</a>{" " * max(1, 50 - len(name))}{stamp} {size:>8}')
    title = html.escape(f"Index of {url_path}")
    sort = "".join(f'<a href="?C={c};O=D">{c}</a> ' for c in "NMSD")
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<h1>{title}</h1>{sort}<hr><pre>"
            + "\r\n".join(rows) + "\r\n</pre><hr></body>\r\n</html>\r\n")


class _Handler(SimpleHTTPRequestHandler):
    """http.server's own handler (real listings, real file serving), plus the nginx view and a log."""

    site: RealSite  # set on the subclass made per site

    def _log(self) -> None:
        parts = urlsplit(self.path)
        self.site.requests.append((self.command, unquote(parts.path) + (f"?{parts.query}" if parts.query else "")))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._log()
        path = unquote(urlsplit(self.path).path)
        if path.startswith("/nginx/clips"):
            target = self.site.root / "clips" / path.removeprefix("/nginx/clips").lstrip("/")
            if target.is_dir():
                if not path.endswith("/"):
                    self.send_response(301)
                    self.send_header("Location", path + "/")
                    self.end_headers()
                    return
                body = nginx_autoindex(target, path).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.path = "/clips" + self.path.removeprefix("/nginx/clips")  # the same bytes, served by http.server
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        self._log()
        super().do_HEAD()

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass


@contextmanager
def real_site(tmp_path: Path) -> Iterator[RealSite]:
    """Build the site under ``tmp_path / "site"`` (clips made once per folder) and serve it on a free
    loopback port for the duration of the block."""
    root = Path(tmp_path) / "site"
    root.mkdir(parents=True, exist_ok=True)
    clips = build_site(root)
    site = RealSite(root=root, base_url="", clips=clips)
    handler = type("SiteHandler", (_Handler,), {"site": site})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=os.fspath(root)))
    httpd.daemon_threads = True
    site.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()
