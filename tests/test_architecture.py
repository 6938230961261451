"""The layering holds: config ← core ← io ← domain packages ← jobs ← flows, cli (pyproject.toml's
import-linter contract), and nothing outside the package installs a top-level ``flows`` module."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_lower_layer_imports_a_higher_one():
    # when import-linter checks the contract (lazy imports inside functions count too)
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config", str(REPO / "pyproject.toml")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    # then every contract is kept
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_every_top_level_package_has_a_floor():
    # given the packages under src/vigil and the contract's layers
    contract = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    floors = {name.strip() for layer in contract["layers"] for name in layer.replace("|", ":").split(":")}
    packages = {p.name for p in (REPO / "src" / "vigil").iterdir()
                if p.is_dir() and (p / "__init__.py").is_file()}
    # then none is left out (a new package must be placed on a floor, not slip past the check)
    assert packages <= floors, packages - floors


def test_config_imports_no_other_vigil_module():
    for path in (REPO / "src" / "vigil" / "config").glob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import vigil", "from vigil")):
                assert stripped.startswith("from vigil.config"), f"{path.name}: {stripped}"


def test_the_flows_folder_is_entrypoints_not_an_installed_package():
    # the installed distribution ships vigil* only; flows/ holds Prefect entrypoint files
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["vigil*"] and find["where"] == ["src"]
    assert not (REPO / "flows" / "__init__.py").exists()
    for entry in (REPO / "flows").glob("*.py"):
        text = entry.read_text()
        assert f"from vigil.flows.{entry.stem} import {entry.stem}_flow" in text
