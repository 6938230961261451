"""Kill points: run Python code in a child process that SIGKILLs itself at an exact call.

A reliability test names a function (``"vigil.io.ledger:_write_head"``), whether to die just before
or just after its ``nth`` call, and the code to run. The child wraps the function in place (module
attribute, so later lookups through the module see the wrapper) and kills itself with SIGKILL: no
``finally``, no atexit, no flush — what a power cut or the OOM killer leaves.

Patch the name where it is looked up: a function imported with ``from x import f`` into module ``m``
is patched as ``"m:f"``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

_PRELUDE = """
import functools, importlib, os, signal, sys
def _arm(target, when, nth):
    module_name, _, attr = target.partition(":")
    owner = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls[0] == nth and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(owner, name, wrapper)
"""


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_child(code: str, *, kill_at: str | None = None, when: str = "after", nth: int = 1,
              env: dict[str, str] | None = None, cwd: str | Path | None = None,
              timeout_s: float = 600) -> ChildResult:
    """Run ``code`` in a fresh interpreter; with ``kill_at``, SIGKILL it at that call."""
    assert when in ("before", "after"), when
    arm = f"_arm({kill_at!r}, {when!r}, {nth})\n" if kill_at else ""
    script = _PRELUDE + arm + textwrap.dedent(code)
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=child_env,
                          cwd=cwd, timeout=timeout_s)
    return ChildResult(proc.returncode, proc.stdout, proc.stderr)
