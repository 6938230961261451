"""Vigil's error types: one root, a few kinds, each with what a user sees.

Every error Vigil raises on purpose derives from :class:`VigilError`. Its kind fixes the exit code
of the command line and the HTTP status of the coming gateway, so that both map errors in one
place (``vigil.cli.errors``) and a user error never ends in a traceback.

Exit codes (also in the README):

====  =====================  ====  ===========================================================
code  kind                   HTTP  meaning
====  =====================  ====  ===========================================================
0     —                      200   done
1     —                      —     a verdict, not an error: validation rejected a batch, the gate
                                   refused a candidate, the ledger does not verify
2     ConfigError            500   a setting, parameter or argument is unknown or invalid
3     ServiceError           503   a service (store, teacher, model server, Prefect) cannot be reached
4     VigilError             500   a step failed (training, evaluation, DVC, the data registry)
5     NotFoundError          404   a model version, dataset version, sample or file does not exist
6     InputError             422   the input itself is bad (unreadable media, a malformed file)
7     ConflictError          409   another run holds the lock, or a concurrent change won
====  =====================  ====  ===========================================================
"""

from __future__ import annotations


class VigilError(Exception):
    """A failure a user can act on; ``str(error)`` is the message they read."""

    exit_code = 4
    http_status = 500
    kind = "error"


class ConfigError(VigilError):
    """A configuration value is unknown or invalid; the message says which and what is allowed."""

    exit_code = 2
    http_status = 500
    kind = "configuration error"


class ServiceError(VigilError):
    """A service Vigil depends on cannot be reached or answered wrongly."""

    exit_code = 3
    http_status = 503
    kind = "service unavailable"


class NotFoundError(VigilError):
    """Something named by the user (a model or dataset version, a sample, a file) does not exist."""

    exit_code = 5
    http_status = 404
    kind = "not found"


class InputError(VigilError):
    """The input itself is bad: unreadable media, a malformed file, a value out of range."""

    exit_code = 6
    http_status = 422
    kind = "bad input"


class ConflictError(VigilError):
    """Another run holds the lock, or a concurrent change won the race."""

    exit_code = 7
    http_status = 409
    kind = "conflict"


def is_user_error(exc: BaseException) -> bool:
    """An error the user acts on (configuration, a name that does not exist, bad input, another run holding
    the workspace): retrying the same step after a few seconds cannot help, and a traceback would only hide
    the message."""
    return isinstance(exc, (ConfigError, NotFoundError, InputError, ConflictError))
