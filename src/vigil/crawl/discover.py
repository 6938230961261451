"""Find the media a source publishes, and what the source claims about each clip.

Generic on purpose (any gallery-like site, not only the zoo): a source URL is a listing page or a
feed. Listing pages are HTML, followed through ``rel=next`` up to ``max_pages``; the same-origin
links on them are candidate item pages, each fetched once and read for a metadata document
(``<link rel="alternate" type="application/json">``) or, failing that, a ``<video src>`` /
``<source src>``. Feeds are JSON Feed 1.1 (an item's ``_extension`` object carrying ``media_url``
is taken as its metadata), RSS 2.0 (``<enclosure>``, ``media:content``) or Atom
(``<link rel="enclosure">``), followed through ``next_url`` / ``rel=next`` as well.

Everything here is parsing: no decision about content types (the bytes decide that later). A
page's claims are bounded here, once: each free-text claim and the artifact list is cut to its cap
(:data:`vigil.core.records.CLAIM_CAPS`) and the cut is named in ``Claims.truncated``, which the
crawler copies into the provenance record.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from pydantic import ValidationError

from vigil.core.records import CLAIM_CAPS, ArtifactTruth, TruncatedClaim, cap_items, cap_text

log = logging.getLogger(__name__)

FEED_TYPES = frozenset({"application/feed+json", "application/json+feed", "application/rss+xml",
                        "application/atom+xml"})
JSON_TYPES = frozenset({"application/json", "application/ld+json", "text/json"})
_VIDEO_MIME_PREFIXES = ("video/", "image/gif")
_LABELS = frozenset({"real", "fake", "unknown"})


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
    entries: tuple[FeedEntry, ...] = ()
    next_urls: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)


def looks_like_feed(body: bytes, content_type: str) -> bool:
    """Decide by the bytes (and only then by the declared type) whether a document is a feed."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"{"):
        return b"jsonfeed.org" in head or b'"items"' in body[:65536]
    if head.startswith(b"<?xml") or head.startswith(b"<rss") or head.startswith(b"<feed"):
        return b"<rss" in head or b"<feed" in head or b"<rdf" in head
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
                    and href and kind.startswith(_VIDEO_MIME_PREFIXES):
                media_url = media_url or clean_url(urljoin(base_url, href))
        entries.append(FeedEntry(page_url, media_url, None))
    return Feed(tuple(entries), tuple(next_urls))


__all__ = ["Candidate", "Claims", "Feed", "FeedEntry", "PageLinks", "clean_url", "looks_like_feed",
           "parse_claims", "parse_feed", "parse_html_links", "same_origin"]
