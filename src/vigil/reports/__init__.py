"""The report kit: pages for people, each a self-contained HTML file and its Markdown twin.

One concept per module:

- :mod:`vigil.reports.document`: a small typed document model (headings, paragraphs, tables, figures,
  pictures, code, columns, banners, sections) that renders the HTML page from the Jinja2 templates in
  ``templates/`` (autoescaped) and the same content as Markdown, with its images as files.
- :mod:`vigil.reports.charts`: charts drawn with matplotlib into inline SVG (grouped bars with interval
  whiskers, a reliability diagram, a timeline of time spans).
- :mod:`vigil.reports.frames`: frame strips: a row of video frames with boxes drawn on them, as PNG.
- :mod:`vigil.reports.format`: how numbers, intervals and differences are written in a report.
- :mod:`vigil.reports.gate`: the gate report (the one page that knows about gate decisions).

The kit (all but :mod:`vigil.reports.gate`) knows nothing of evaluation, models or gates: a lineage page or a
monitoring summary builds a :class:`~vigil.reports.document.Document` from the same blocks.
"""
