"""Workspace locks: a second run is refused with the holder named; the kernel frees a killed holder's lock."""

from __future__ import annotations

import os
import threading

from tests.support.killpoints import run_child
from vigil.config.errors import ConflictError
from vigil.io.locks import WorkspaceBusy, lock_path, read_holder, workspace_lock


def test_second_holder_is_refused_with_the_first_named(tmp_path):
    # given a lock held by this thread
    with workspace_lock(tmp_path, "ingest"):
        errors: list[BaseException] = []

        def contend() -> None:
            try:
                with workspace_lock(tmp_path, "ingest"):
                    pass
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                errors.append(exc)

        # when another thread asks for it without waiting
        worker = threading.Thread(target=contend)
        worker.start()
        worker.join(10)
    # then it is refused as a conflict (exit 7) that names the lock and the holder's pid
    assert len(errors) == 1 and isinstance(errors[0], WorkspaceBusy) and isinstance(errors[0], ConflictError)
    assert "ingest" in str(errors[0]) and f"pid {os.getpid()}" in str(errors[0])


def test_a_waiting_run_gets_the_lock_once_it_is_released(tmp_path):
    # given a lock that another thread releases after a moment
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with workspace_lock(tmp_path, "train"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(0.3, release.set).start()
    # when this run waits up to 10 s
    with workspace_lock(tmp_path, "train", wait_s=10) as path:
        # then it gets the lock, and the file names this process
        assert read_holder(path).pid == os.getpid()
    holder.join(10)


def test_nesting_in_one_thread_and_other_names_do_not_conflict(tmp_path):
    with workspace_lock(tmp_path, "crawl"), workspace_lock(tmp_path, "crawl"), workspace_lock(tmp_path, "ingest"):
        assert lock_path(tmp_path, "crawl").is_file()
    with workspace_lock(tmp_path, "crawl"):  # released after the outer exit
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    # given a process that takes the lock and is SIGKILLed while holding it
    child = run_child(f"""
        from vigil.io.locks import workspace_lock
        import os, signal
        with workspace_lock({str(tmp_path)!r}, "ingest"):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.killed, child.stderr
    dead_pid = read_holder(lock_path(tmp_path, "ingest")).pid
    # then the lock is free at once, and the next holder replaces the dead one's name in the file
    with workspace_lock(tmp_path, "ingest") as path:
        assert read_holder(path).pid == os.getpid() != dead_pid
