#!/usr/bin/env bash
# Creates (or refreshes) the project venv: CPU torch first, then Vigil with pinned dependencies.
# Idempotent: a stamp of pyproject.toml + constraints.txt skips the work when nothing changed.
set -euo pipefail
# pip warns once per package about the machine's local index folders; that is noise here.
quiet_pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
cd "$(dirname "$0")/.."
VENV="${VIGIL_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
stamp_value="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
stamp_file="$VENV/.vigil-stamp"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp_value" ]]; then
  exit 0
fi
echo "==> setting up $VENV (first run takes about 2-3 minutes)"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
# CPU torch 2.13.0 first: it comes from the machine's local wheel folder; any other torch request
# would pull several GB of CUDA packages (see ENVIRONMENT.md). The constraint keeps it in place.
quiet_pip install --quiet "torch==2.13.0"
quiet_pip install --quiet -c constraints.txt -e ".[dev]"
echo "$stamp_value" > "$stamp_file"
echo "==> $VENV ready"
