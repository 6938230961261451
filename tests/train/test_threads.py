"""CPU threads for torch: train.threads, else the environment's OMP_NUM_THREADS, else min(4, cores);
applied in the process that trains and passed to the stages `dvc repro` starts."""

from __future__ import annotations

import json
import subprocess

import yaml

from tests.support.killpoints import run_child
from tests.support.workspaces import small_doc
from vigil.config.params import load_params
from vigil.train.threads import MAX_DEFAULT_THREADS, SPIN_COUNT, resolve_threads, thread_env, usable_cores


def test_train_threads_wins_then_the_environment_then_a_bounded_default():
    # given train.threads set, the environment naming a team, or neither
    # then train.threads wins, a valid OMP_NUM_THREADS comes next, and the default is min(4, cores)
    assert resolve_threads(3, {"OMP_NUM_THREADS": "1"}) == 3
    assert resolve_threads(None, {"OMP_NUM_THREADS": "2"}) == 2
    assert resolve_threads(None, {}) == min(MAX_DEFAULT_THREADS, usable_cores())
    # and a value torch would refuse in the environment falls back to the default
    assert resolve_threads(None, {"OMP_NUM_THREADS": "0"}) == resolve_threads(None, {"OMP_NUM_THREADS": "x"}) \
        == min(MAX_DEFAULT_THREADS, usable_cores())


def test_children_get_the_team_size_and_bounded_spinning_unless_the_user_chose_a_policy():
    # when the environment for a training child is built
    env = thread_env(2, {})
    # then OpenMP and MKL get the same team, and waiting threads spin briefly, then sleep
    assert env == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "GOMP_SPINCOUNT": SPIN_COUNT}
    # and a wait policy or spin count the user set is kept instead
    assert thread_env(2, {"OMP_WAIT_POLICY": "ACTIVE"}) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
                                                            "OMP_WAIT_POLICY": "ACTIVE"}
    assert thread_env(2, {"GOMP_SPINCOUNT": "0"})["GOMP_SPINCOUNT"] == "0"


def test_pin_threads_sets_torch_and_what_its_children_inherit():
    # given a fresh interpreter (torch allows the inter-op team to be set once, before any work)
    code = """
        import json, os
        from vigil.train.threads import pin_threads
        n = pin_threads(3)
        import torch
        print(json.dumps({"n": n, "intra": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
                          "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")},
                          "again": pin_threads(2), "intra_again": torch.get_num_threads()}))
    """
    # when it pins 3 threads, then (a second stage in the same process) 2
    child = run_child(code, env={"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": ""}, timeout_s=300)
    assert child.returncode == 0, child.stderr[-3000:]
    got = json.loads(child.stdout.strip().splitlines()[-1])
    # then torch runs on 3, the inter-op team too, children would inherit 3 with bounded spinning,
    # and a second pin changes the team without failing on the inter-op setting torch no longer allows
    assert (got["n"], got["intra"], got["interop"]) == (3, 3, 3)
    assert got["env"] == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "GOMP_SPINCOUNT": SPIN_COUNT}
    assert (got["again"], got["intra_again"]) == (2, 2)


def test_the_dvc_stages_are_started_with_train_threads(tmp_path, monkeypatch):
    import vigil.jobs.train as job
    from vigil.jobs.runtime import runtime_for

    # given a project whose params.yaml sets train.threads: 1, and a runtime with the same parameters
    doc = small_doc()
    doc["train"]["threads"] = 1
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(doc))
    rt = runtime_for(tmp_path / "ws", load_params(project / "params.yaml"))
    started = []
    monkeypatch.setattr(job.subprocess, "run", lambda cmd, **kw: started.append((cmd, kw["env"]))
                        or subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # what the parent happens to have: train.threads wins
    # when the job runs `dvc repro`
    job.repro(rt, project)
    # then DVC (and the stages it starts, which inherit its environment) train on one thread
    (cmd, env), = started
    assert cmd[1:4] == ["-m", "dvc", "repro"]
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"]) == ("1", "1")
