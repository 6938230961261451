"""CPU threads for torch (``train.threads``): how many, and that every training process uses them.

Why this matters on a shared machine: torch's CPU kernels run on an OpenMP team (libgomp) whose
threads spin while they wait for each other. With one thread per core and any other busy process on
the machine (a second training, a test run, a build), a spinning thread holds a core that the team's
next barrier needs. Measured on 2 cores, 30 tiny-profile pretrain steps (batch of 8 pairs; one or
two runs each, other jobs on the machine at times):

============================  =========  =====================
team                          quiet      two CPU hogs running
============================  =========  =====================
2 threads, libgomp default    3.0-4.0 s  42-185 s (to 10 s a step)
2 threads, spin count 100000  3.6 s      16 s
2 threads, spin count 10000   4.6 s      10 s
2 threads, passive waiting    5.6-5.8 s  26 s
1 thread                      5.4-6.3 s  10-22 s
============================  =========  =====================

So two things keep the slowdown in proportion to the load:

- **bounded spinning**: a waiting thread spins ``GOMP_SPINCOUNT=100000`` times, then sleeps (as fast
  as the default on a quiet machine, a third to a tenth of its time on a loaded one). An ``OMP_WAIT_POLICY`` or
  ``GOMP_SPINCOUNT`` already in the environment is kept. libgomp reads it when it loads, so it
  reaches the processes that import torch afterwards: the ``dvc repro`` stages (``vigil train stage
  ...``) get it from :func:`thread_env`, and a stage run directly sets it before its first torch import;
- **a bounded team**: ``train.threads`` when set; otherwise ``OMP_NUM_THREADS`` when the
  environment sets it (a test run pins 1, a scheduler its share); otherwise ``min(4, usable
  cores)``. Beyond about 4 the tiny profile's small matrices gain little, and a job that takes every
  core of a large shared host slows every other job on it.

On a machine shared with other jobs, set ``train.threads`` to this job's share of the cores (1 on a
2-core machine that also runs tests: no team, nothing to wait for); on a dedicated machine leave it
null. The number reaches child processes as ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, and this
process through ``torch.set_num_threads`` (and ``set_num_interop_threads`` where torch still allows
it). Thread counts change speed, not results: no stage's DVC parameters include ``train.threads``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

MAX_DEFAULT_THREADS = 4
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
WAIT_POLICY_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SPIN_COUNT = "100000"  # libgomp's default is 300000 (and unbounded under OMP_WAIT_POLICY=ACTIVE)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None, environ: Mapping[str, str] = os.environ) -> int:
    """The team size: ``threads`` (``train.threads``), else a valid ``OMP_NUM_THREADS``, else min(4, cores)."""
    if threads:
        return int(threads)
    inherited = environ.get("OMP_NUM_THREADS", "").strip()
    if inherited.isdigit() and int(inherited) > 0:
        return int(inherited)
    return min(MAX_DEFAULT_THREADS, usable_cores())


def thread_env(threads: int | None, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables a child process that trains needs: team size for OpenMP and MKL, and bounded
    spinning of waiting threads (unless ``environ`` already chooses a wait policy or spin count)."""
    n = str(resolve_threads(threads, environ))
    chosen = {k: environ[k] for k in WAIT_POLICY_VARS if environ.get(k)}
    return {**dict.fromkeys(THREAD_VARS, n), **(chosen or {"GOMP_SPINCOUNT": SPIN_COUNT})}


def pin_threads(threads: int | None) -> int:
    """Apply ``train.threads`` to this process and the children it starts; returns the team size.

    Call it before the first ``import torch`` where possible (the spin count only reaches a torch
    loaded afterwards); the team size applies either way."""
    env = thread_env(threads)
    os.environ.update(env)
    n = int(env["OMP_NUM_THREADS"])
    import torch  # after the variables: a first import here loads libgomp with them

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # torch allows it once, before any inter-op work: a second stage in one process
        pass
    log.debug("torch CPU threads: %d (interop %d)", torch.get_num_threads(), torch.get_num_interop_threads())
    return n


__all__ = ["MAX_DEFAULT_THREADS", "SPIN_COUNT", "THREAD_VARS", "WAIT_POLICY_VARS", "pin_threads", "resolve_threads",
           "thread_env", "usable_cores"]
