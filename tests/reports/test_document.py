"""The document model: one page and its Markdown twin, escaped, self-contained, the same sections."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from vigil.reports import charts
from vigil.reports.document import (
    Banner,
    Bullets,
    Cell,
    Code,
    Columns,
    Document,
    Figure,
    Heading,
    Paragraph,
    Picture,
    Section,
    Svg,
    Table,
)

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & \'q\''
VOID = {"meta", "link", "img", "br", "hr", "input"}
# a 1×1 PNG
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00"
       b"\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")


class _Page(HTMLParser):
    """What the browser's parser sees: tags, their attributes, headings in order, tag balance."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.unbalanced: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None
        self._skip = 0  # inside an inline <svg>: its own <title>s are not page text

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "svg":
            self._skip += 1
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"} and not self._skip:
            self._heading = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "svg":
            self._skip -= 1
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"} and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.unbalanced.append(tag)
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _chart() -> Svg:
    return charts.grouped_bars(["a"], [charts.BarSeries("model", "#2563eb", {"a": charts.Estimate(0.5)})],
                               title="A chart")


def _every_block(text: str) -> Document:
    """A document with every kind of block, each carrying ``text``."""
    return Document(f"Title {text}", [
        Section(f"Summary {text}", [
            Banner("PASS", f"PASS: {text}", f"facts {text}", accent="good"),
            Heading(f"Sub {text}", anchor="sub"),
            Paragraph(f"Para {text}", tone="muted"),
            Bullets([f"item {text}", (f"lead {text}", f"rest {text}")]),
            Table([f"Head {text}", "n"], [[f"cell {text}", Cell("1.0", numeric=True, tone="good", fill="bad")]]),
        ], anchor="summary"),
        Section(f"Details {text}", [
            Columns([[Heading(f"Left {text}", level=4), Paragraph("l")], [Heading(f"Right {text}", level=4)]]),
            Figure(_chart(), f"caption {text}", "chart"),
            Picture(PNG, f"alt {text}", "pixel"),
            Section(f"Item {text}", [Code(f"code {text}\n```inner```")], anchor="item-1", level=3,
                    element="article", accent="bad", badge=f"badge {text}"),
        ], anchor="details"),
    ])


# ------------------------------------------------------------------------------------------ tests

def test_every_text_is_escaped_in_the_page_and_never_becomes_markup():
    # given: every block carrying markup that would run if pasted into the page as is
    doc = _every_block(HOSTILE)

    # when: the page is rendered
    page = doc.html()
    parsed = _parse(page)

    # then: none of it became a tag or an attribute; all of it is there as text
    assert "<script" not in page.lower() and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert not any(tag == "script" or any(k.startswith("on") for k in attrs) for tag, attrs in parsed.tags)
    assert [tag for tag, attrs in parsed.tags if tag == "img"] == ["img"]  # the picture, not the text's <img>
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 15
    assert "&amp; &#39;q&#39;" in page
    # and: the page is balanced HTML (every opened element closed, in order)
    assert parsed.unbalanced == [] and parsed.stack == []


def test_the_markdown_twin_has_the_same_sections_in_the_same_order():
    # given: a document with sections, nested sections, headings and columns
    doc = _every_block("x")

    # when: both forms are rendered
    page_headings = _parse(doc.html()).headings
    md = doc.markdown()
    md_headings = [line.lstrip("#").strip() for line in md.splitlines() if re.match(r"#{1,6} ", line)]

    # then: the same headings (page title included, a badge after its title), in the same order and levels
    def words(headings: list[str]) -> list[str]:
        return [re.sub(r"[\s·]+", " ", h) for h in headings]

    assert words(page_headings) == words(md_headings)
    assert md_headings[:3] == ["Title x", "Summary x", "Sub x"] and "Item x · badge x" in md_headings
    assert re.findall(r"^(#+) Item x", md, re.M) == ["###"] and "<h3>Item x" in doc.html()
    # and: the twin carries the same content as text: the table, the bullets, the banner's headline
    assert "| Head x | n |\n|---|---|\n| cell x | 1.0 |" in md
    assert "- item x\n- **lead x**: rest x" in md and "**PASS: x**\n\nfacts x" in md
    assert "![caption x](img/chart.svg)" in md and "![alt x](img/pixel.png)" in md
    # and: the code block's fence is longer than any run of backticks inside it
    assert "````text\ncode x\n```inner```\n````" in md


def test_markdown_text_is_escaped_but_code_stays_verbatim():
    # given: markup and a pipe in a table cell and a paragraph, and markup in a code block
    doc = Document("t", [Paragraph("<b>bold</b>"), Table(["a|b"], [["<i>x</i>"]]), Code("<script>alert(1)</script>")])

    # when: the twin is written
    md = doc.markdown()

    # then: a Markdown viewer shows the markup as text, the table keeps its columns, the code is verbatim
    assert "&lt;b&gt;bold&lt;/b&gt;" in md and "| a\\|b |" in md and "| &lt;i&gt;x&lt;/i&gt; |" in md
    assert "```text\n<script>alert(1)</script>\n```" in md


def test_the_page_refers_to_nothing_outside_itself(tmp_path):
    # given: a document with a chart and a picture
    doc = _every_block("x")

    # when: it is written out
    html_path, md_path = doc.write(tmp_path / "out")
    page = html_path.read_text()
    parsed = _parse(page)

    # then: every link is an in-page anchor or a data: URI, and no URL other than the SVG namespace appears
    refs = [v for _, attrs in parsed.tags for k, v in attrs.items() if k in {"src", "href", "xlink:href", "action"}]
    assert refs and all(v.startswith(("#", "data:")) for v in refs)
    assert not re.search(r"(https?:)?//[^\s\"')]+", page.replace("http://www.w3.org/2000/svg", ""))
    assert "@import" not in page and "<link rel=\"stylesheet\"" not in page and "<script" not in page
    # and: every in-page link has its target
    ids = {attrs["id"] for _, attrs in parsed.tags if "id" in attrs}
    assert {v[1:] for v in refs if v.startswith("#")} <= ids
    # and: every image the twin links to was written beside it
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md_path.read_text())
    assert sorted(linked) == ["img/chart.svg", "img/pixel.png"]
    assert all((md_path.parent / p).is_file() for p in linked)
    assert (md_path.parent / "img/pixel.png").read_bytes() == PNG


def test_the_links_at_the_top_default_to_the_top_level_sections():
    # given: two top-level sections with anchors, one without, and a nested one
    doc = Document("t", [Section("One", [], anchor="one"), Section("Two", [Section("Inner", [], anchor="in", level=3)],
                                                                   anchor="two"), Section("Three", [])])

    # then: the navigation names the anchored top-level sections, in order
    assert doc.nav == (("One", "one"), ("Two", "two"))
    assert '<nav><a href="#one">One</a><a href="#two">Two</a></nav>' in doc.html()


@pytest.mark.parametrize("make", [
    lambda: Cell("x", tone="loud"),
    lambda: Cell("x", fill="blue"),
    lambda: Table(["a", "b"], [["only one"]]),
    lambda: Heading("h", level=1),
    lambda: Heading("h", anchor='x" onclick="alert(1)'),
    lambda: Figure(_chart(), "c", "../escape"),
    lambda: Picture(b"GIF89a", "alt", "p"),
    lambda: Svg("<div>not svg</div>", "t"),
    lambda: Svg('<svg><script>alert(1)</script></svg>', "t"),
    lambda: Document("t", [Figure(_chart(), "a", "same"), Section("s", [Figure(_chart(), "b", "same")])]),
])
def test_a_malformed_block_is_refused_when_made(make):
    # given/when: a block with a value the page cannot show safely; then: it is refused at once
    with pytest.raises(ValueError):
        make()


def test_the_kit_stands_alone():
    # given: the kit's generic modules (everything in vigil.reports but the gate report)
    import ast
    from pathlib import Path

    import vigil.reports

    folder = Path(vigil.reports.__file__).parent
    kit = [p for p in folder.glob("*.py") if p.name != "gate.py"]
    assert {p.stem for p in kit} >= {"__init__", "document", "charts", "frames", "format"}

    # when: their imports are read
    imported = set()
    for path in kit:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)

    # then: of vigil they use only the kit itself (no evaluation, gate or model code)
    assert {m for m in imported if m.startswith("vigil")} <= {"vigil.reports", "vigil.reports.document",
                                                              "vigil.reports.format"}
