"""The ``vigil`` command line: one Typer app, one module per group of commands.

Every command goes through :mod:`vigil.cli.errors`, so a user error ends with its message and its
exit code (README: exit codes), never a traceback.
"""

from __future__ import annotations

from vigil.cli import admin, annotate, data, evaluate, run, train
from vigil.cli.errors import VigilTyper

app = VigilTyper(
    help="Vigil keeps an explainable detector of AI-generated video current: crawl, ingest, "
         "validate, version and annotate data, train a candidate, evaluate and gate it against the champion.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
)
for group in (run, data, annotate, train, evaluate, admin):
    group.register(app)

__all__ = ["app"]
