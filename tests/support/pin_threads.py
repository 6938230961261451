"""pytest plugin: the suite's torch runs on one CPU thread, in the test process and in every child.

Registered in pyproject.toml (``addopts = "-p tests.support.pin_threads"``) so that it loads before any
conftest or test module, before the first ``import torch``. Why: torch's default team is one thread
per core, and its waiting threads spin; on a 2-core machine where anything else runs, a tiny pretrain
step went from 0.12 s to 2-6 s and a training test from a minute to past its timeout. One thread per
process has nothing to wait for, so the suite slows in proportion to the load instead.

Children (``vigil train stage``, ``dvc repro``, :func:`tests.support.killpoints.run_child`) inherit
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, which :mod:`vigil.train.threads` honours when
``train.threads`` is null. ``VIGIL_TEST_THREADS=N`` runs the suite on N threads instead (``0``:
leave the machine's settings alone), e.g. to time it against a dedicated machine's figures.
"""

from __future__ import annotations

import os
import sys

import pytest

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _threads() -> int:
    value = os.environ.get("VIGIL_TEST_THREADS", "1").strip()
    return int(value) if value.isdigit() else 1


def _pin() -> None:
    """The variables for children and a torch not loaded yet; the team of a torch already loaded."""
    n = _threads()
    if not n:
        return
    os.environ.update(dict.fromkeys(THREAD_VARS, str(n)))
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    _pin()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Again before each test: code under test may pin threads of its own (``train.threads``)."""
    _pin()
    yield
