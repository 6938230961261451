"""One crawl per workspace: a second one, from the job, the command line or the Prefect flow, is refused
with one message that names the holder, exit 7 and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vigil.config.params import parse_params
from vigil.crawl.state import CrawlLocked, CrawlState
from vigil.io.locks import WorkspaceBusy
from vigil.jobs.crawl import run_crawl
from vigil.jobs.runtime import runtime_for

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "http://127.0.0.1:9/"  # never reached: the refusal comes first

_HOLD_WORKSPACE_LOCK = """
import sys, time
from vigil.io.locks import workspace_lock
with workspace_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""
_HOLD_CRAWL_STATE = """
import sys, time
from vigil.crawl.state import CrawlState
with CrawlState(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@contextmanager
def held_by_another_process(code: str, *args: str) -> Iterator[int]:
    """Run ``code`` (which takes a lock, prints "held" and sleeps) in a child; yields its pid."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "held", proc.stderr.read()
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def user_env(workspace: Path, params_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env.update(VIGIL_WORKSPACE=str(workspace), VIGIL_PARAMS_FILE=str(params_file))
    return env


@pytest.fixture
def params_file(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(f"crawl:\n  sources:\n    - name: nowhere\n      url: {NOWHERE}\n      allow_private: true\n")
    return path


def assert_refused(result: subprocess.CompletedProcess, pid: int) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == 7, text
    assert "Traceback" not in text, text
    assert "conflict" in text and f"pid {pid}" in " ".join(text.split()), text


def test_the_crawl_job_is_refused_naming_the_holder(tmp_path):
    params = parse_params({"crawl": {"sources": [{"name": "nowhere", "url": NOWHERE, "allow_private": True}]}})
    rt = runtime_for(tmp_path / "ws", params)
    with held_by_another_process(_HOLD_WORKSPACE_LOCK, str(rt.workspace), "crawl") as pid:
        with pytest.raises(WorkspaceBusy, match=f"pid {pid}") as refused:
            run_crawl(rt, params.crawl.sources)
    assert refused.value.exit_code == 7 and refused.value.holder.pid == pid
    assert not (rt.workspace / "crawl").exists()  # refused before the crawl touched its state


def test_a_held_crawl_state_names_its_holder(tmp_path):
    with held_by_another_process(_HOLD_CRAWL_STATE, str(tmp_path / "state")) as pid:
        with pytest.raises(CrawlLocked, match=f"pid {pid}") as refused:
            CrawlState(tmp_path / "state")
    assert isinstance(refused.value, WorkspaceBusy) and refused.value.exit_code == 7
    CrawlState(tmp_path / "state").close()  # the kernel released it with the holder


@pytest.mark.parametrize("holder", ["job", "crawl-state"])
def test_vigil_crawl_is_refused_with_exit_7_and_no_traceback(holder, tmp_path, params_file):
    ws = tmp_path / "ws"
    code, args = ((_HOLD_WORKSPACE_LOCK, (str(ws), "crawl")) if holder == "job"
                  else (_HOLD_CRAWL_STATE, (str(ws / "crawl"),)))
    with held_by_another_process(code, *args) as pid:
        result = subprocess.run([sys.executable, "-m", "vigil.cli", "crawl"], capture_output=True, text=True,
                                env=user_env(ws, params_file), cwd=tmp_path, timeout=120)
    assert_refused(result, pid)


_FLOW = """
import sys
from vigil.cli.console import setup_logging
from vigil.jobs.runtime import configure_prefect, load_runtime
rt = load_runtime()
configure_prefect(rt.settings)
setup_logging("INFO", rt.workspace)
from vigil.config.errors import VigilError
from vigil.flows.crawl import crawl_flow
try:
    crawl_flow(params_ref=rt.params_hash)
except VigilError as exc:
    print(f"{exc.kind}: {exc}")
    sys.exit(exc.exit_code)
"""


@pytest.mark.slow
def test_the_crawl_flow_is_refused_at_once_with_one_message_and_no_traceback(tmp_path, params_file):
    ws = tmp_path / "ws"
    with held_by_another_process(_HOLD_WORKSPACE_LOCK, str(ws), "crawl") as pid:
        # when the Prefect flow is started while another crawl holds the workspace
        result = subprocess.run([sys.executable, "-c", _FLOW], capture_output=True, text=True,
                                env=user_env(ws, params_file), cwd=tmp_path, timeout=300)
    # then it ends with the lock's message naming the holder, exit 7, no traceback, no retry, no task
    assert_refused(result, pid)
    text = result.stdout + result.stderr
    assert "crawl refused" in text and "Retry" not in text and "crawl-sources" not in text, text
