"""A small typed document model that renders one self-contained HTML page and its Markdown twin.

A :class:`Document` is a title and a list of blocks (:class:`Heading`, :class:`Paragraph`, :class:`Bullets`,
:class:`Table`, :class:`Figure`, :class:`Picture`, :class:`Code`, :class:`Columns`, :class:`Banner`,
:class:`Section`). :meth:`Document.html` renders it with the Jinja2 templates in ``templates/``
(autoescape on, so every text is escaped there and nowhere else); :meth:`Document.markdown` writes the same
blocks in the same order as Markdown, with the figures and pictures as files (:meth:`Document.assets`,
written under ``img/`` by :meth:`Document.write`).

The page needs nothing else: the CSS is in the page shell, charts are inline SVG (:class:`Svg`, made by
:mod:`vigil.reports.charts`), pictures are PNG ``data:`` URIs, and there is no script.

>>> doc = Document("Weekly <summary>", [
...     Section("Numbers", [Paragraph("a < b"), Table(["Metric", "Value"], [["F1", Cell("0.9", numeric=True)]])],
...             anchor="numbers")])
>>> "<title>Weekly &lt;summary&gt;</title>" in doc.html(), '<a href="#numbers">Numbers</a>' in doc.html()
(True, True)
>>> print(doc.markdown())
# Weekly &lt;summary&gt;
<BLANKLINE>
## Numbers
<BLANKLINE>
a &lt; b
<BLANKLINE>
| Metric | Value |
|---|---|
| F1 | 0.9 |
<BLANKLINE>
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal, Union

import jinja2
from markupsafe import Markup

__all__ = ["Banner", "Block", "Bullets", "Cell", "Code", "Columns", "Document", "Figure", "Heading", "Item",
           "Paragraph", "Picture", "Section", "Svg", "Table", "md_text"]

TEMPLATES = Path(__file__).parent / "templates"

Tone = Literal["", "good", "bad", "muted"]  # text colour: green and bold, red and bold, grey
Fill = Literal["", "good", "bad"]  # a table cell's background: light green, light red
Accent = Literal["", "good", "bad"]  # a banner's, section's or badge's colour
_TONES, _FILLS = ("", "good", "bad", "muted"), ("", "good", "bad")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # figure and picture names (file names in the Markdown twin)
_ANCHOR = re.compile(r"[A-Za-z0-9_.:-]*")


def md_text(text: object) -> str:
    """Text for a Markdown line or table cell: HTML-escaped (a Markdown viewer renders raw HTML), pipes
    escaped, on one line.

    >>> md_text("a | <b>\\nc")
    'a \\\\| &lt;b&gt; c'
    """
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {list(allowed)}, not {value!r}")


def _check_anchor(anchor: str) -> None:
    if not _ANCHOR.fullmatch(anchor):
        raise ValueError(f"anchor {anchor!r}: letters, digits and _ . : - only (vigil.reports.format.slug makes one)")


# ------------------------------------------------------------------------------------------ blocks

@dataclass(frozen=True)
class Heading:
    """A heading (level 2–6; the page title is the only level 1), optionally a link target."""

    text: str
    level: int = 3
    anchor: str = ""
    kind: ClassVar[str] = "heading"

    def __post_init__(self) -> None:
        if not 2 <= self.level <= 6:
            raise ValueError(f"heading level {self.level}: 2 to 6")
        _check_anchor(self.anchor)


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str
    tone: Tone = ""
    kind: ClassVar[str] = "paragraph"

    def __post_init__(self) -> None:
        _check(self.tone, _TONES, "tone")


@dataclass(frozen=True)
class Item:
    """One bullet: its text, after an optional bold lead (``**lead**: text``)."""

    text: str
    lead: str = ""


@dataclass(frozen=True)
class Bullets:
    """A bulleted list; each item is a text, an ``(lead, text)`` pair or an :class:`Item`."""

    items: Sequence[Item | str | tuple[str, str]]
    kind: ClassVar[str] = "bullets"

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(
            i if isinstance(i, Item) else Item(i[1], lead=i[0]) if isinstance(i, tuple) else Item(str(i))
            for i in self.items))


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, right-aligned tabular digits when ``numeric``, a text ``tone``, a ``fill``."""

    text: str
    numeric: bool = False
    tone: Tone = ""
    fill: Fill = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", str(self.text))
        _check(self.tone, _TONES, "tone")
        _check(self.fill, _FILLS, "fill")

    @property
    def css(self) -> str:
        """The cell's CSS classes (``num``, ``t-<tone>``, ``f-<fill>``), or ''."""
        return " ".join(c for c in ("num" if self.numeric else "", self.tone and f"t-{self.tone}",
                                    self.fill and f"f-{self.fill}") if c)


@dataclass(frozen=True)
class Table:
    """A table with one header row; a cell is a text or a :class:`Cell`."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Cell | str]]
    kind: ClassVar[str] = "table"

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", tuple(str(h) for h in self.headers))
        rows = tuple(tuple(c if isinstance(c, Cell) else Cell(str(c)) for c in row) for row in self.rows)
        for row in rows:
            if len(row) != len(self.headers):
                raise ValueError(f"a row has {len(row)} cells for {len(self.headers)} headers: {row}")
        object.__setattr__(self, "rows", rows)


@dataclass(frozen=True)
class Svg:
    """An SVG image to inline in the page, made by :mod:`vigil.reports.charts` (the only markup that reaches
    the page unescaped: it is serialised by an XML writer, its texts escaped there). ``title`` is its
    accessible name, also its ``<title>``."""

    markup: str
    title: str

    def __post_init__(self) -> None:
        head = self.markup.lstrip()[:200].lower()
        lowered = self.markup.lower()
        if not head.startswith("<svg") or "<script" in lowered or "<foreignobject" in lowered:
            raise ValueError("an Svg is one <svg> element with no script (make it with vigil.reports.charts)")

    @property
    def html(self) -> Markup:
        return Markup(self.markup)


@dataclass(frozen=True)
class Figure:
    """A chart with its caption; ``name`` is its file name (without ``.svg``) beside the Markdown twin."""

    svg: Svg
    caption: str
    name: str
    kind: ClassVar[str] = "figure"

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"figure name {self.name!r}: letters, digits and _ . - only")


@dataclass(frozen=True)
class Picture:
    """A PNG image (a frame strip, say): a ``data:`` URI in the page, ``img/<name>.png`` beside the twin."""

    png: bytes
    alt: str
    name: str
    kind: ClassVar[str] = "picture"

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"picture name {self.name!r}: letters, digits and _ . - only")
        if not self.png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError(f"picture {self.name}: not PNG bytes")

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class Code:
    """Verbatim text (a model's raw answer, say): a ``<pre>`` block, a fenced block in the twin."""

    text: str
    kind: ClassVar[str] = "code"


@dataclass(frozen=True)
class Columns:
    """Blocks side by side in the page (wrapping when narrow), one after the other in the twin."""

    columns: Sequence[Sequence[Block]]
    kind: ClassVar[str] = "columns"

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(tuple(c) for c in self.columns))


@dataclass(frozen=True)
class Banner:
    """A verdict banner: a big ``word`` (PASS, say), a ``headline`` and small ``facts``. The twin shows the
    headline in bold and the facts, so the headline should say the word too."""

    word: str
    headline: str
    facts: str = ""
    accent: Accent = ""
    kind: ClassVar[str] = "banner"

    def __post_init__(self) -> None:
        _check(self.accent, _FILLS, "accent")


@dataclass(frozen=True)
class Section:
    """A titled card holding blocks: ``<section>`` (or ``<article>``, for one item of many), its title a
    heading of ``level``; ``accent`` colours its left edge, ``badge`` is a small label after the title (after
    a middle dot in the twin)."""

    title: str
    blocks: Sequence[Block]
    anchor: str = ""
    level: int = 2
    element: Literal["section", "article"] = "section"
    accent: Accent = ""
    badge: str = ""
    kind: ClassVar[str] = "section"

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not 2 <= self.level <= 6:
            raise ValueError(f"section level {self.level}: 2 to 6")
        _check(self.element, ("section", "article"), "element")
        _check(self.accent, _FILLS, "accent")
        _check_anchor(self.anchor)


Block = Union[Heading, Paragraph, Bullets, Table, Figure, Picture, Code, Columns, Banner, Section]


def _children(block: Block) -> Iterator[Block]:
    if isinstance(block, Section):
        yield from block.blocks
    elif isinstance(block, Columns):
        for column in block.columns:
            yield from column


def _walk(blocks: Sequence[Block]) -> Iterator[Block]:
    for block in blocks:
        yield block
        yield from _walk(list(_children(block)))


# ----------------------------------------------------------------------------------------- Markdown

def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _markdown(block: Block, img_dir: str) -> str:
    match block:
        case Heading(text=text, level=level):
            return f"{'#' * level} {md_text(text)}"
        case Paragraph(text=text):
            return md_text(text)
        case Bullets(items=items):
            return "\n".join(f"- **{md_text(i.lead)}**: {md_text(i.text)}" if i.lead else f"- {md_text(i.text)}"
                             for i in items)
        case Table(headers=headers, rows=rows):
            lines = ["| " + " | ".join(md_text(h) for h in headers) + " |",
                     "|" + "|".join("---" for _ in headers) + "|"]
            lines += ["| " + " | ".join(md_text(c.text) for c in row) + " |" for row in rows]
            return "\n".join(lines)
        case Figure(caption=caption, name=name):
            return f"![{md_text(caption)}]({img_dir}/{name}.svg)"
        case Picture(alt=alt, name=name):
            return f"![{md_text(alt)}]({img_dir}/{name}.png)"
        case Code(text=text):
            fence = _fence(text)
            return f"{fence}text\n{text}\n{fence}"
        case Columns():
            return "\n\n".join(_markdown(b, img_dir) for b in _children(block))
        case Banner(headline=headline, facts=facts):
            return f"**{md_text(headline)}**" + (f"\n\n{md_text(facts)}" if facts else "")
        case Section(title=title, level=level, blocks=blocks, badge=badge):
            heading = f"{'#' * level} {md_text(title)}" + (f" · {md_text(badge)}" if badge else "")
            return "\n\n".join([heading, *(_markdown(b, img_dir) for b in blocks)])
    raise TypeError(f"not a report block: {block!r}")


# -------------------------------------------------------------------------------------------- HTML

@cache
def environment() -> jinja2.Environment:
    """The kit's Jinja2 environment: its templates, autoescape on, undefined names an error."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


# ---------------------------------------------------------------------------------------- document

@dataclass(frozen=True)
class Document:
    """A page: its title, its blocks and the links at its top (by default one per top-level section with an
    anchor: ``(label, anchor)``)."""

    title: str
    blocks: Sequence[Block]
    nav: Sequence[tuple[str, str]] | None = None
    lang: str = "en"
    _assets: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if self.nav is None:
            object.__setattr__(self, "nav", tuple((b.title, b.anchor) for b in self.blocks
                                                  if isinstance(b, Section) and b.anchor))
        for _, anchor in self.nav:
            _check_anchor(anchor)
        assets: dict[str, bytes] = {}
        for block in _walk(self.blocks):
            if isinstance(block, (Figure, Picture)):
                name = f"{block.name}.svg" if isinstance(block, Figure) else f"{block.name}.png"
                if name in assets:
                    raise ValueError(f"two images are named {name}")
                assets[name] = block.svg.markup.encode() if isinstance(block, Figure) else block.png
        object.__setattr__(self, "_assets", assets)

    def html(self, template: str = "document.html.j2", **context: object) -> str:
        """The page: ``template`` (one that extends ``base.html.j2``) rendered with the document."""
        return environment().get_template(template).render(doc=self, title=self.title, nav=self.nav,
                                                           lang=self.lang, **context)

    def markdown(self, img_dir: str = "img") -> str:
        """The twin: the same blocks in the same order; images link to ``img_dir/<name>.svg|png``."""
        return "\n\n".join([f"# {md_text(self.title)}", *(_markdown(b, img_dir) for b in self.blocks)]) + "\n"

    def assets(self) -> dict[str, bytes]:
        """The twin's image files by name: each figure's SVG and each picture's PNG."""
        return dict(self._assets)

    def write(self, out_dir: Path | str, stem: str = "report") -> tuple[Path, Path]:
        """Write ``out_dir/<stem>.html``, ``out_dir/<stem>.md`` and the twin's images under ``out_dir/img/``;
        returns (html_path, md_path)."""
        out_dir = Path(out_dir)
        img_dir = out_dir / "img"
        img_dir.mkdir(parents=True, exist_ok=True)
        for name, data in self._assets.items():
            (img_dir / name).write_bytes(data)
        html_path, md_path = out_dir / f"{stem}.html", out_dir / f"{stem}.md"
        html_path.write_text(self.html(), encoding="utf-8")
        md_path.write_text(self.markdown(), encoding="utf-8")
        return html_path, md_path
