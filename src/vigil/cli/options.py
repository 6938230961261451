"""Options several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ParamsOption = Annotated[Optional[Path], typer.Option(
    "--params", "-p", help="params.yaml to use (default: VIGIL_PARAMS_FILE or ./params.yaml).")]
