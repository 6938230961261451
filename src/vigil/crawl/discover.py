"""Find the media a source publishes, and what the source claims about each clip.

Generic on purpose (any gallery-like site, not only the zoo): a source URL is a listing page, a
feed or a sitemap. Listing pages are HTML (a gallery, or a plain directory listing such as Python's
``http.server`` or nginx ``autoindex``), followed through ``rel=next`` and into sub-folders
(:func:`classify_link`) up to ``max_pages`` and ``max_depth``. The same-origin links on them are
sorted by :func:`classify_link`: a link whose name ends like a video (:data:`MEDIA_LINK_SUFFIXES`)
is a media candidate, downloaded and never read as a page; a sub-folder is another listing; the rest
are candidate item pages, each fetched once and read for a metadata document
(``<link rel="alternate" type="application/json">``) or, failing that, a ``<video src>`` /
``<source src>`` / ``og:video`` (an item page that turns out to be media itself is taken as a
candidate after its first bytes). Feeds are JSON Feed 1.1 (an item's ``_extension`` object carrying
``media_url`` is taken as its metadata), RSS 2.0 (``<enclosure>``, ``media:content``) or Atom
(``<link rel="enclosure">``), followed through ``next_url`` / ``rel=next`` as well. Video sitemaps
(``<urlset>``: ``<video:content_loc>`` is the media, ``<loc>`` its page; a ``<url>`` without a video
is an item page) and sitemap indexes (``<sitemapindex>``: child sitemaps, one level deeper) too.

Sites that publish no claims (RSS, Atom, plain listings) get the source's own ones
(:func:`apply_source_claims`): ``crawl.sources[i].label`` / ``generator`` / ``licence`` /
``generator_from_path``, each used only where the site says nothing, and ``Claims.claimed_by`` names
who claimed what.

Everything here is parsing: no decision about content types (the bytes decide that later). A
page's claims are bounded here, once: each free-text claim and the artifact list is cut to its cap
(:data:`vigil.core.records.CLAIM_CAPS`) and the cut is named in ``Claims.truncated``, which the
crawler copies into the provenance record.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from pydantic import ValidationError

from vigil.core.records import CLAIM_CAPS, ArtifactTruth, TruncatedClaim, cap_items, cap_text
from vigil.core.sniff import ACCEPTED_VIDEO_TYPES, MEDIA_SUFFIXES

log = logging.getLogger(__name__)

FEED_TYPES = frozenset({"application/feed+json", "application/json+feed", "application/rss+xml",
                        "application/atom+xml"})
JSON_TYPES = frozenset({"application/json", "application/ld+json", "text/json"})
_VIDEO_MIME_PREFIXES = ("video/", "image/gif", "image/apng")
_LABELS = frozenset({"real", "fake", "unknown"})

#: Other names of the accepted containers (by sniffed type); only types the sniffer accepts count.
_SUFFIX_ALIASES: dict[str, tuple[str, ...]] = {
    "video/mp4": (".m4v", ".3gp"), "video/quicktime": (".qt",), "video/mp2t": (".mts", ".m2ts"),
    "video/x-msvideo": (".divx",), "video/webm": (), "video/x-matroska": (), "image/gif": (),
}
#: Suffixes that say little: most .png / .webp files are stills (thumbnails), so a link ending in one is
#: read as an item page, whose first bytes then tell an APNG (a candidate) from a still (nothing).
_AMBIGUOUS_SUFFIXES = frozenset({".png", ".webp", ".apng"})
#: A link whose (URL-decoded, lower-cased) path ends in one of these is a media candidate: downloaded,
#: never fetched as a page. A hint only: the downloaded bytes decide (sniffed) what it is.
MEDIA_LINK_SUFFIXES: frozenset[str] = frozenset(
    {suffix for kind, suffix in MEDIA_SUFFIXES.items() if suffix not in _AMBIGUOUS_SUFFIXES}
    | {alias for kind in ACCEPTED_VIDEO_TYPES for alias in _SUFFIX_ALIASES.get(kind, ())}
)


@dataclass(frozen=True)
class Claims:
    """What a source says about a clip; recorded as provenance, never trusted for content type."""

    generator: str = "unknown"
    label: str = "unknown"
    pair_id: str | None = None
    prompt: str | None = None
    licence: str | None = None
    published_at: str | None = None
    artifacts: tuple[ArtifactTruth, ...] = ()
    mask_url: str | None = None
    item_id: str | None = None
    from_metadata: bool = False  # True when a metadata document (not just a link) backed it
    truncated: tuple[TruncatedClaim, ...] = ()  # claims cut to their cap (vigil.core.records.CLAIM_CAPS)
    claimed_by: tuple[tuple[str, str], ...] = ()  # (field, ClaimOrigin) of each known label/generator/licence


@dataclass(frozen=True)
class Candidate:
    """One media URL to download, with where it was found and the source's claims."""

    source: str
    media_url: str
    page_url: str | None
    claims: Claims = Claims()
    allow_private: bool = False


@dataclass(frozen=True)
class PageLinks:
    """What an HTML page offers the crawler."""

    next_urls: tuple[str, ...] = ()
    feed_urls: tuple[str, ...] = ()
    json_alternates: tuple[str, ...] = ()
    video_urls: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ()


def clean_url(url: str) -> str:
    """Absolute URL without its #fragment (a fragment never changes what the server sends)."""
    return urldefrag(url.strip())[0]


class _LinkParser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.next_urls: list[str] = []
        self.feed_urls: list[str] = []
        self.json_alternates: list[str] = []
        self.video_urls: list[str] = []
        self.anchors: list[str] = []
        self._in_video = 0

    def _abs(self, href: str | None) -> str | None:
        if not href or href.strip().lower().startswith(("javascript:", "mailto:", "data:")):
            return None
        return clean_url(urljoin(self.base_url, href))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        rel = set(a.get("rel", "").lower().split())
        kind = a.get("type", "").split(";")[0].strip().lower()
        if tag == "base" and a.get("href"):
            self.base_url = urljoin(self.base_url, a["href"])
        elif tag in ("link", "a"):
            url = self._abs(a.get("href"))
            if url is None:
                return
            if "next" in rel:
                self.next_urls.append(url)
            elif "alternate" in rel and kind in FEED_TYPES:
                self.feed_urls.append(url)
            elif "alternate" in rel and kind in JSON_TYPES:
                self.json_alternates.append(url)
            elif tag == "a" and not rel & {"prev", "previous", "nofollow", "first", "last"}:
                self.anchors.append(url)
        elif tag == "video":
            self._in_video += 1
            if url := self._abs(a.get("src")):
                self.video_urls.append(url)
        elif tag == "source" and self._in_video:
            if url := self._abs(a.get("src")):
                self.video_urls.append(url)
        elif tag == "meta" and a.get("property", "").lower() in ("og:video", "og:video:url"):
            if url := self._abs(a.get("content")):
                self.video_urls.append(url)

    def handle_endtag(self, tag: str) -> None:
        if tag == "video" and self._in_video:
            self._in_video -= 1


def parse_html_links(html: str, base_url: str) -> PageLinks:
    """The links of an HTML page that matter to the crawler, absolute and in page order."""
    parser = _LinkParser(base_url)
    try:
        parser.feed(html)
        parser.close()
    except Exception as exc:  # html.parser is lenient; never let one odd page stop a crawl
        log.warning("HTML of %s only partly parsed: %s", base_url, exc)
    return PageLinks(
        next_urls=_unique(parser.next_urls), feed_urls=_unique(parser.feed_urls),
        json_alternates=_unique(parser.json_alternates), video_urls=_unique(parser.video_urls),
        anchors=_unique(parser.anchors),
    )


def _unique(urls: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(urls))


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme.lower(), pa.netloc.lower()) == (pb.scheme.lower(), pb.netloc.lower())


# ---- links on a listing -----------------------------------------------------------------------

LinkKind = Literal["media", "folder", "page", "skip", "offsite"]


def is_media_link(url: str) -> bool:
    """True when the URL's path ends like a video file (:data:`MEDIA_LINK_SUFFIXES`).

    >>> is_media_link("http://h/gen-a/clip%201.MP4"), is_media_link("http://h/a.webm?x=1")
    (True, True)
    >>> is_media_link("http://h/items/a"), is_media_link("http://h/thumb.png"), is_media_link("http://h/gen-a/")
    (False, False, False)
    """
    path = unquote(urlsplit(url).path).lower()
    return posixpath.splitext(path)[1] in MEDIA_LINK_SUFFIXES


def _directory(path: str) -> str:
    """The folder part of a URL path, with its trailing slash ('/a/b/' for '/a/b/' and '/a/b/index.html')."""
    return path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"


def classify_link(url: str, page_url: str, root_url: str) -> LinkKind:
    """What a link found on a listing page at ``page_url`` (of the source at ``root_url``) is.

    ``media``: a same-origin link ending like a video; ``folder``: a sub-folder of the page (path
    ends with '/', strictly below the page's folder and the source's, no query) to read as a
    listing; ``skip``: the page itself with a query (the ``?C=N;O=D`` sort links of Apache/nginx
    listings), the parent folder (``../``) or any folder above the page; ``offsite``: another
    origin; ``page``: anything else on the origin, an item page.

    >>> root = "http://h/clips/"
    >>> [classify_link(u, root, root) for u in ("http://h/clips/a%20b.mp4", "http://h/clips/gen-a/",
    ...  "http://h/", "http://h/clips/?C=N;O=D", "http://h/items/3", "http://o/x.mp4", "http://h/other/")]
    ['media', 'folder', 'skip', 'skip', 'page', 'offsite', 'page']
    >>> classify_link("http://h/clips/", "http://h/clips/gen-a/", root)
    'skip'
    """
    if not same_origin(url, page_url):
        return "offsite"
    if is_media_link(url):
        return "media"
    link, page = urlsplit(url), urlsplit(page_url)
    link_path, page_path = link.path or "/", page.path or "/"
    if link_path == page_path or (link.query and _directory(link_path) == _directory(page_path)):
        return "skip"
    if link_path.endswith("/"):
        if page_path.startswith(link_path):
            return "skip"  # ../, the site root, any folder above this one: already read or out of bounds
        below_page = link_path.startswith(_directory(page_path))
        below_root = same_origin(url, root_url) and link_path.startswith(_directory(urlsplit(root_url).path or "/"))
        if below_page and below_root and not link.query:
            return "folder"
    return "page"


# ---- the source's own claims ------------------------------------------------------------------

@dataclass(frozen=True)
class SourceClaims:
    """What a crawl source's settings claim (``crawl.sources[i]``), for sites that publish nothing."""

    label: str | None = None
    generator: str | None = None
    licence: str | None = None
    generator_from_path: str | None = None  # regex with a named group 'generator'


def generator_from_path(media_url: str, pattern: str | None) -> str | None:
    """The ``generator`` group of ``pattern`` searched in the URL-decoded path of ``media_url``.

    >>> generator_from_path("http://h/clips/gen%20a/clip%201.mp4", r"/(?P<generator>[^/]+)/[^/]+$")
    'gen a'
    >>> generator_from_path("http://h/clip.mp4", r"/clips/(?P<generator>[^/]+)/") is None
    True
    """
    if not pattern:
        return None
    match = re.search(pattern, unquote(urlsplit(media_url).path))
    value = (match.group("generator") or "").strip() if match else ""
    return cap_text(value, CLAIM_CAPS["generator"])[0] or None


def apply_source_claims(claims: Claims, media_url: str, source: SourceClaims) -> Claims:
    """``claims`` with the source's claims filling what the site left unknown, and ``claimed_by`` set.

    The site's word always wins. A ``real`` label means generator ``real`` (the zoo's convention
    for camera footage). A path that names ``real`` (``generator_from_path``) means a real clip,
    label included: it is more specific than the source-wide label, so one listing with a ``real``
    folder beside generator folders can be a ``label: fake`` source.

    >>> src = SourceClaims(label="fake", generator_from_path=r"/(?P<generator>[^/]+)/[^/]+$", licence="CC0")
    >>> c = apply_source_claims(Claims(), "http://h/clips/gen-a/x.mp4", src)
    >>> c.label, c.generator, c.licence, dict(c.claimed_by)
    ('fake', 'gen-a', 'CC0', {'label': 'source', 'generator': 'path', 'licence': 'source'})
    >>> c = apply_source_claims(Claims(), "http://h/clips/real/x.mp4", src)
    >>> c.label, c.generator, dict(c.claimed_by)
    ('real', 'real', {'label': 'path', 'generator': 'path', 'licence': 'source'})
    >>> c = apply_source_claims(Claims(generator="sora", label="fake"), "http://h/real/x.mp4", SourceClaims(label="real"))
    >>> c.label, c.generator, dict(c.claimed_by)
    ('fake', 'sora', {'label': 'published', 'generator': 'published'})
    >>> c = apply_source_claims(Claims(), "http://h/cam/x.mp4", SourceClaims(label="real"))
    >>> c.label, c.generator, dict(c.claimed_by)
    ('real', 'real', {'label': 'source', 'generator': 'label'})
    """
    origin: dict[str, str] = {}
    label, generator, licence = claims.label, claims.generator, claims.licence
    for name, known in (("label", label != "unknown"), ("generator", generator != "unknown"),
                        ("licence", licence is not None)):
        if known:
            origin[name] = "published"
    from_path = generator_from_path(media_url, source.generator_from_path) if generator == "unknown" else None
    if label == "unknown":
        if from_path == "real" and source.label != "real":
            label, origin["label"] = "real", "path"
        elif source.label:
            label, origin["label"] = source.label, "source"
    if generator == "unknown":
        if label == "real" and origin.get("label") != "path":
            generator, origin["generator"] = "real", "label"
        elif from_path and not (from_path == "real" and label == "fake"):
            generator, origin["generator"] = from_path, "path"
        elif source.generator:
            generator, origin["generator"] = source.generator, "source"
    if label == "unknown" and generator == "real" and origin.get("generator") == "source":
        label, origin["label"] = "real", "source"
    if licence is None and source.licence:
        licence, origin["licence"] = source.licence, "source"
    return replace(claims, label=label, generator=generator, licence=licence, claimed_by=tuple(origin.items()))


# ---- metadata ---------------------------------------------------------------------------------

def parse_claims(doc: Mapping, base_url: str) -> tuple[str | None, Claims, list[str]]:
    """Read a metadata document (the zoo's ``/items/<id>.json`` shape, or a feed extension):
    returns (media URL or None, claims, problems). Unusable fields are dropped with a problem
    line instead of failing the item: the media is still worth keeping. Every free-text claim and
    the artifact list are cut to their caps (:data:`vigil.core.records.CLAIM_CAPS`); the claims
    name each cut in ``truncated`` and a problem line says so."""
    problems: list[str] = []
    truncated: list[TruncatedClaim] = []

    def capped(name: str, value: str | None, cap_name: str | None = None) -> str | None:
        limit = CLAIM_CAPS[cap_name or name]
        kept, original = cap_text(value, limit)
        if original is not None and kept is not None:
            truncated.append(TruncatedClaim(field=name, original_length=original, kept=len(kept)))
            problems.append(f"{name} is {original} characters; kept the first {len(kept)} (cap {limit})")
        return kept

    def text(key: str) -> str | None:
        value = doc.get(key)
        return None if value is None else str(value)

    media = doc.get("media_url") or doc.get("video_url") or doc.get("url")
    media_url = clean_url(urljoin(base_url, str(media))) if media else None
    mask = doc.get("mask_url")
    label = str(doc.get("label") or "unknown").lower()
    if label not in _LABELS:
        problems.append(f"label {label[:CLAIM_CAPS['generator']]!r} is not real/fake/unknown; recorded as unknown")
        label = "unknown"
    raw_artifacts = doc.get("artifacts") or []
    if not isinstance(raw_artifacts, list):
        problems.append("artifacts is not a list; ignored")
        raw_artifacts = []
    kept_raw, n_raw = cap_items(raw_artifacts, CLAIM_CAPS["artifacts"])
    if n_raw is not None:
        truncated.append(TruncatedClaim(field="artifacts", original_length=n_raw, kept=len(kept_raw)))
        problems.append(f"{n_raw} artifacts; kept the first {len(kept_raw)} (cap {CLAIM_CAPS['artifacts']})")
    artifacts: list[ArtifactTruth] = []
    for index, raw in enumerate(kept_raw):
        try:
            fields = {k: v for k, v in dict(raw).items() if k in ArtifactTruth.model_fields}
            if isinstance(fields.get("type"), str):
                fields["type"] = capped(f"artifacts[{index}].type", fields["type"], "artifact_type")
            artifacts.append(ArtifactTruth.model_validate(fields))
        except (ValidationError, TypeError, ValueError) as exc:
            problems.append(f"artifact {index} dropped: {exc}".splitlines()[0][:CLAIM_CAPS["prompt"]])
    claims = Claims(
        generator=capped("generator", text("generator")) or "unknown", label=label,
        pair_id=capped("pair_id", text("pair_id")), prompt=capped("prompt", text("prompt")),
        licence=capped("licence", text("licence") or text("license")),
        published_at=capped("published_at", text("published_at") or text("date_published")),
        artifacts=tuple(artifacts),
        mask_url=clean_url(urljoin(base_url, str(mask))) if mask else None,
        item_id=capped("item_id", text("item_id") or text("id")), from_metadata=True,
        truncated=tuple(truncated),
    )
    return media_url, claims, problems


# ---- feeds ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedEntry:
    """One feed item: a media URL with claims, or only an item page to visit."""

    page_url: str | None
    media_url: str | None
    claims: Claims | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Feed:
    """A parsed feed or sitemap: its entries, the next pages of the same feed (same depth), and
    ``children`` (the sitemaps a sitemap index points to: one level deeper)."""

    entries: tuple[FeedEntry, ...] = ()
    next_urls: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)
    children: tuple[str, ...] = ()
    kind: str = "feed"  # "feed" (JSON Feed, RSS, Atom) or "sitemap"


def looks_like_feed(body: bytes, content_type: str) -> bool:
    """Decide by the bytes (and only then by the declared type) whether a document is a feed."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"{"):
        return b"jsonfeed.org" in head or b'"items"' in body[:65536]
    if head.startswith((b"<?xml", b"<rss", b"<feed", b"<urlset", b"<sitemapindex")):
        return any(tag in head for tag in (b"<rss", b"<feed", b"<rdf", b"<urlset", b"<sitemapindex"))
    return content_type.split(";")[0].strip().lower() in FEED_TYPES and not head.startswith(b"<!doctype html")


def parse_feed(body: bytes, base_url: str) -> Feed:
    """Parse a JSON Feed, RSS or Atom document; a malformed feed yields a problem, not an error."""
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return _parse_json_feed(stripped, base_url)
    return _parse_xml_feed(stripped, base_url)


def _parse_json_feed(body: bytes, base_url: str) -> Feed:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Feed(problems=(f"JSON feed does not parse: {exc}",))
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return Feed(problems=("JSON feed has no items list",))
    entries = []
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        page = item.get("url") or item.get("external_url")
        page_url = clean_url(urljoin(base_url, str(page))) if page else None
        extension = next((v for k, v in item.items()
                          if k.startswith("_") and isinstance(v, dict) and v.get("media_url")), None)
        if extension is not None:
            media_url, claims, problems = parse_claims(extension, base_url)
            entries.append(FeedEntry(page_url, media_url, claims, tuple(problems)))
            continue
        media_url = next((clean_url(urljoin(base_url, str(att["url"])))
                          for att in item.get("attachments") or []
                          if isinstance(att, dict) and att.get("url")
                          and str(att.get("mime_type", "")).startswith(_VIDEO_MIME_PREFIXES)), None)
        entries.append(FeedEntry(page_url, media_url, None))
    next_url = doc.get("next_url")
    return Feed(tuple(entries), (clean_url(urljoin(base_url, str(next_url))),) if next_url else ())


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _parse_xml_feed(body: bytes, base_url: str) -> Feed:
    if b"<!entity" in body[:65536].lower():
        return Feed(problems=("XML feed declares entities; refused (entity expansion attacks)",))
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return Feed(problems=(f"XML feed does not parse: {exc}",))
    if _local(root.tag) in ("urlset", "sitemapindex"):
        return _parse_sitemap(root, base_url)
    entries: list[FeedEntry] = []
    next_urls: list[str] = []
    for element in root.iter():
        name = _local(element.tag)
        if name == "link" and element.get("rel") == "next" and element.get("href"):
            next_urls.append(clean_url(urljoin(base_url, element.get("href", ""))))
        if name not in ("item", "entry"):
            continue
        page_url = media_url = None
        for child in element:
            child_name = _local(child.tag)
            rel, kind = child.get("rel", "alternate"), child.get("type", "")
            href = child.get("href") or child.get("url")
            if child_name == "link" and href is None and (child.text or "").strip():
                page_url = clean_url(urljoin(base_url, child.text.strip()))  # RSS <link>text</link>
            elif child_name == "link" and href and rel == "alternate":
                page_url = clean_url(urljoin(base_url, href))  # Atom
            elif (child_name in ("enclosure", "content") or (child_name == "link" and rel == "enclosure")) \
                    and href and (kind.startswith(_VIDEO_MIME_PREFIXES)
                                  or (not kind and is_media_link(urljoin(base_url, href)))):
                media_url = media_url or clean_url(urljoin(base_url, href))
        entries.append(FeedEntry(page_url, media_url, None))
    return Feed(tuple(entries), tuple(next_urls))


def _text_of(element: ET.Element, name: str) -> str | None:
    """Text of the first child named ``name`` (any namespace), stripped; None when absent or empty."""
    for child in element:
        if _local(child.tag) == name and (child.text or "").strip():
            return child.text.strip()  # type: ignore[union-attr]
    return None


def _parse_sitemap(root: ET.Element, base_url: str) -> Feed:
    """A sitemap index (child sitemaps) or a URL set: each ``<video:video>`` of a ``<url>`` with a
    ``<video:content_loc>`` is a media entry (its page is the ``<loc>``; ``<video:publication_date>``
    is recorded as published_at), a ``<url>`` without one is an item page to visit.

    >>> xml = (b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    ...        b'xmlns:video="http://www.google.com/schemas/sitemap-video/1.1"><url><loc>/items/a</loc>'
    ...        b'<video:video><video:content_loc>/media/a.mp4</video:content_loc></video:video></url>'
    ...        b'<url><loc>/items/b</loc></url></urlset>')
    >>> [(e.page_url, e.media_url) for e in parse_feed(xml, "http://h/sitemap.xml").entries]
    [('http://h/items/a', 'http://h/media/a.mp4'), ('http://h/items/b', None)]
    >>> parse_feed(b'<sitemapindex><sitemap><loc>/s1.xml</loc></sitemap></sitemapindex>', "http://h/").children
    ('http://h/s1.xml',)
    """
    def absolute(url: str) -> str:
        return clean_url(urljoin(base_url, url))

    if _local(root.tag) == "sitemapindex":
        children = [absolute(loc) for sm in root if _local(sm.tag) == "sitemap" if (loc := _text_of(sm, "loc"))]
        return Feed(children=_unique(children), kind="sitemap")
    entries: list[FeedEntry] = []
    for url in root:
        if _local(url.tag) != "url":
            continue
        loc = _text_of(url, "loc")
        page_url = absolute(loc) if loc else None
        videos = [v for v in url if _local(v.tag) == "video"]
        media = [(absolute(content), v) for v in videos if (content := _text_of(v, "content_loc"))]
        for media_url, video in media:
            published, _ = cap_text(_text_of(video, "publication_date"), CLAIM_CAPS["published_at"])
            entries.append(FeedEntry(page_url, media_url, Claims(published_at=published)))
        if not media and page_url:
            entries.append(FeedEntry(page_url, None, None))
    return Feed(tuple(entries), kind="sitemap")


__all__ = ["MEDIA_LINK_SUFFIXES", "Candidate", "Claims", "Feed", "FeedEntry", "LinkKind", "PageLinks",
           "SourceClaims", "apply_source_claims", "classify_link", "clean_url", "generator_from_path",
           "is_media_link", "looks_like_feed", "parse_claims", "parse_feed", "parse_html_links", "same_origin"]
