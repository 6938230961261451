"""Run the doctests of the library's modules (the examples in docstrings must stay true)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import vigil

MODULES = sorted(m.name for m in pkgutil.walk_packages(vigil.__path__, "vigil.")
                 if not m.name.startswith(("vigil.cli",)))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
