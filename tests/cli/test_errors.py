"""Every user error in the CLI ends with a message and its documented exit code, never a traceback.

Bad configuration, a store that cannot be reached, a model or dataset id that does not exist: each
command is run the way a user would run it, and its output is read the way a user would read it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.config.errors import ConfigError, InputError, NotFoundError, ServiceError

EXIT = {"config": ConfigError.exit_code, "service": ServiceError.exit_code, "not_found": NotFoundError.exit_code}


def test_exit_codes_are_the_documented_ones():
    # the README's table and the classes must agree; a change here is a change for every script
    assert (ConfigError.exit_code, ServiceError.exit_code, NotFoundError.exit_code, InputError.exit_code) == (2, 3, 5, 6)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for kind, code in [("ConfigError", 2), ("ServiceError", 3), ("NotFoundError", 5), ("InputError", 6)]:
        assert f"| {code} | `{kind}`" in readme


@pytest.fixture
def user_env(tmp_path) -> dict[str, str]:
    """A new user's environment: no VIGIL_ settings but a workspace of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env["VIGIL_WORKSPACE"] = str(tmp_path / "ws")
    return env


def _invoke(args: list[str], env: dict[str, str], cwd: Path):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        # only VIGIL_* differ between cases; CliRunner puts them into os.environ for the call
        cleared = {k: None for k in os.environ if k.startswith("VIGIL_")}
        return CliRunner().invoke(app, args, env={**cleared, **{k: v for k, v in env.items() if k.startswith("VIGIL_")}})
    finally:
        os.chdir(old)


def _assert_user_error(result, code: int, *needles: str) -> None:
    text = result.output
    assert result.exit_code == code, text
    assert "Traceback" not in text and not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), text
    for needle in needles:
        assert needle in " ".join(text.split()), text


BAD_CONFIG_COMMANDS = [
    ["run", "--no-train"], ["crawl"], ["ingest"], ["annotate"], ["train"], ["evaluate", "champion", "fixed"],
    ["gate", "mv-000000000000"], ["config", "show"], ["data", "versions"], ["labels", "flag", "abc", "--by", "me"],
    ["labels", "import-labelstudio", "export.json"], ["store", "check"], ["audit", "verify"],
]


@pytest.mark.parametrize("args", BAD_CONFIG_COMMANDS, ids=lambda a: " ".join(a))
def test_a_bad_parameter_names_the_key_and_exits_2(args, tmp_path, user_env):
    # given a params file with a value of the wrong type
    bad = tmp_path / "params.yaml"
    bad.write_text("ingest:\n  frames: lots\n")
    user_env["VIGIL_PARAMS_FILE"] = str(bad)
    # when any command starts, then it stops at once, naming the key and the value
    _assert_user_error(_invoke(args, user_env, tmp_path), EXIT["config"], "configuration error", "ingest.frames = 'lots'")


@pytest.mark.parametrize("args", [["crawl"], ["store", "check"], ["audit", "verify"]], ids=lambda a: " ".join(a))
def test_a_misspelt_setting_is_refused_with_the_allowed_names(args, tmp_path, user_env):
    user_env["VIGIL_STORE_BACKNED"] = "s3"
    _assert_user_error(_invoke(args, user_env, tmp_path), EXIT["config"], "VIGIL_STORE_BACKNED", "VIGIL_STORE_BACKEND")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args", [["crawl"], ["store", "check"], ["labels", "flag", "abc", "--by", "me"]],
                         ids=lambda a: " ".join(a))
def test_an_unreachable_store_is_a_service_error_naming_the_endpoint(args, tmp_path, user_env):
    # given S3 settings pointing at a port where nothing listens
    port = _closed_port()
    user_env.update(VIGIL_STORE_BACKEND="s3", VIGIL_S3_ENDPOINT=f"127.0.0.1:{port}", VIGIL_S3_ACCESS_KEY="k",
                    VIGIL_S3_SECRET_KEY="s")
    _assert_user_error(_invoke(args, user_env, tmp_path), EXIT["service"], "service unavailable", f"127.0.0.1:{port}")


@pytest.mark.parametrize("args, needle", [
    (["evaluate", "mv-000000000000", "fixed"], "no model version mv-000000000000"),
    (["evaluate", "champion", "fixed"], "no champion yet"),
    (["evaluate", "no-such-folder", "fixed"], "neither a model version id"),
    (["annotate"], "no dataset version to annotate yet"),
    (["labels", "export-labelstudio", "tasks.json", "--tag", "ds-0042"], "no dataset version ds-0042"),
    (["data", "diff", "ds-0001", "ds-0002"], "no dataset version 'ds-0001'"),
], ids=["model-id", "no-champion", "model-folder", "nothing-to-annotate", "export-tag", "diff-tags"])
def test_a_name_that_does_not_exist_is_not_found(args, needle, tmp_path, user_env):
    _assert_user_error(_invoke(args, user_env, tmp_path), EXIT["not_found"], "not found", needle)


def test_a_dataset_id_that_does_not_exist_is_not_found(tmp_path, user_env):
    # given a model folder (any config.json) and a dataset version that was never published
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    result = _invoke(["evaluate", str(model), "ds-0099"], user_env, tmp_path)
    _assert_user_error(result, EXIT["not_found"], "not found", "ds-0099")


@pytest.mark.slow
def test_a_user_error_inside_a_prefect_flow_ends_without_a_traceback(tmp_path, user_env):
    # given the real command in its own process: the gate runs as a Prefect flow, whose task fails
    done = subprocess.run([sys.executable, "-m", "vigil.cli", "gate", "mv-000000000000"], cwd=tmp_path, env=user_env,
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    # then the task is not retried, the output has no traceback, and the exit code is "not found"
    assert done.returncode == EXIT["not_found"], output
    assert "Traceback" not in output and "Retry 1/1" not in output, output
    assert "no model version mv-000000000000" in " ".join(output.split())
    # and the traceback is kept for whoever debugs it, in the workspace's log file
    assert "Traceback" in (tmp_path / "ws" / "logs" / "vigil.log").read_text()
