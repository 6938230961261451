"""Where the command line turns errors into messages and exit codes: one mapping for every command.

:class:`vigil.config.errors.VigilError` and its kinds carry their own exit code (the table in that
module and in the README); a few errors from below Vigil that mean the same thing to a user are
mapped here too. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import typer
import urllib3
from rich.markup import escape

from vigil.cli.console import console
from vigil.config.errors import NotFoundError, ServiceError, VigilError


def user_error(exc: BaseException) -> VigilError | None:
    """The Vigil error a user should read for ``exc``, or None when it is a bug."""
    if isinstance(exc, VigilError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"{exc.filename or exc}: no such file or folder")
    if isinstance(exc, (ConnectionError, TimeoutError, urllib3.exceptions.HTTPError)):  # urllib3: the S3 client's transport
        return ServiceError(f"cannot reach a service: {exc}")
    return None


def exit_on_user_error(fn: Callable) -> Callable:
    """Run a command; a user error ends it with its message (no traceback) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            error = user_error(exc)
            if error is None:
                raise
            # the message names settings like crawl.sources[gen-a].label: brackets must not be read as markup
            console.print(f"[red]{error.kind}[/red]: {escape(str(error))}", highlight=False)
            raise typer.Exit(error.exit_code) from None

    return wrapper


def _mapping_errors(register: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
    """Typer's registering decorator, registering ``fn`` wrapped in :func:`exit_on_user_error`."""

    def decorator(fn: Callable) -> Callable:
        register(exit_on_user_error(fn))
        return fn

    return decorator


class VigilTyper(typer.Typer):
    """A Typer app whose commands and callbacks all go through :func:`exit_on_user_error`."""

    def command(self, *args, **kwargs):
        return _mapping_errors(super().command(*args, **kwargs))

    def callback(self, *args, **kwargs):
        return _mapping_errors(super().callback(*args, **kwargs))


def sub_app(help: str, **kwargs) -> VigilTyper:
    return VigilTyper(help=help, no_args_is_help=kwargs.pop("no_args_is_help", True), add_completion=False,
                      pretty_exceptions_show_locals=False, **kwargs)
