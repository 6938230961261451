"""Options several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ParamsOption = Annotated[Optional[Path], typer.Option(
    "--params", "-p", help="params.yaml to use; a file named here or by VIGIL_PARAMS_FILE must exist "
                           "(default: VIGIL_PARAMS_FILE, else ./params.yaml, else the built-in defaults).")]
