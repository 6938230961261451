"""S3 keys of the DVC remote never show on a command line, in config.local or in an error message."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
from pathlib import Path

import configobj
import pytest

from tests.support.stores import make_s3_store
from vigil.io import dvc
from vigil.io.registry import REMOTE_NAME, open_registry


class CmdlineWatcher:
    """Reads /proc/<pid>/cmdline of this process's children, as any local user can, for as long as it runs.

    Only children: other tests on the machine run processes of their own, which may hold the shared
    test server's keys in their code.
    """

    def __init__(self, *needles: str) -> None:
        self.needles = needles
        self.leaks: list[str] = []
        self.dvc_commands: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                except (OSError, ValueError, IndexError):
                    continue
                if ppid != me:
                    continue
                line = " ".join(argv)
                if "-m dvc" in line:
                    self.dvc_commands.add(" ".join(argv[argv.index("dvc") + 1:]).strip())
                if any(needle in line for needle in self.needles):
                    self.leaks.append(line)
            self._stop.wait(0.005)

    def __enter__(self) -> CmdlineWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.fixture
def fresh_credentials():
    """Credentials are kept per process; each test starts as a new process would."""
    yield
    dvc._credentials.clear()


def test_push_pull_round_trip_keeps_the_secret_off_argv_and_disk(s3_server, tmp_path, monkeypatch, caplog,
                                                                  fresh_credentials):
    secret = s3_server.secret_key
    store = make_s3_store(s3_server)
    # given stale AWS variables in the environment, which must not mix with the remote's own keys
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "stale-key")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "stale-token")
    caplog.set_level(logging.DEBUG, logger="vigil")
    with CmdlineWatcher(secret, s3_server.access_key) as watcher:
        # when a registry is configured against the S3 store and data is pushed, removed and pulled
        reg = open_registry(tmp_path / "registry", store)
        (reg.path / "blob.bin").write_bytes(b"dataset bytes" * 1000)
        dvc.add(reg.path, "blob.bin")
        dvc.push(reg.path, "blob.bin.dvc", remote=REMOTE_NAME)
        shutil.rmtree(dvc.cache_dir(reg.path))
        (reg.path / "blob.bin").unlink()
        dvc.pull(reg.path, "blob.bin.dvc", remote=REMOTE_NAME)
    # then the bytes made the real round trip through the remote
    assert (reg.path / "blob.bin").read_bytes() == b"dataset bytes" * 1000
    assert any(key.startswith("dvc/files/md5/") for key in store.list_keys("dvc/"))
    # and no process ever had a key in its command line, though DVC commands were seen running
    assert watcher.leaks == []
    assert any(c.startswith("push") for c in watcher.dvc_commands), watcher.dvc_commands
    assert any(c.startswith("remote modify") for c in watcher.dvc_commands), watcher.dvc_commands
    # and no file of the repository holds the secret; config.local is private and keeps the endpoint
    assert _files_containing(reg.path, secret) == []
    local = reg.path / ".dvc" / "config.local"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert dvc.read_config(reg.path, local=True)[f'remote "{REMOTE_NAME}"']["endpointurl"] == store.endpoint_url
    # and the logs never carried it either
    assert secret not in caplog.text


def test_keys_left_in_config_local_by_an_older_vigil_are_moved_out(s3_server, tmp_path, fresh_credentials):
    secret = s3_server.secret_key
    store = make_s3_store(s3_server)
    reg = open_registry(tmp_path / "registry", store)
    # given a config.local as an older Vigil wrote it: world-readable, with the keys in it
    local = reg.path / ".dvc" / "config.local"
    config = configobj.ConfigObj(str(local))
    config[f'remote "{REMOTE_NAME}"'].update({"access_key_id": s3_server.access_key, "secret_access_key": secret})
    config.write()
    os.chmod(local, 0o644)
    dvc._credentials.clear()  # a new process: nothing set in memory
    (reg.path / "blob.bin").write_bytes(b"old layout")
    # when the next DVC command runs
    dvc.add(reg.path, "blob.bin")
    dvc.push(reg.path, "blob.bin.dvc", remote=REMOTE_NAME)
    # then it still authenticates, and the file no longer holds the keys and is private
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert secret not in local.read_text()
    assert dvc.read_config(reg.path, local=True)[f'remote "{REMOTE_NAME}"']["endpointurl"] == store.endpoint_url
    assert any(key.startswith("dvc/files/md5/") for key in store.list_keys("dvc/"))


def test_a_failed_command_never_shows_the_secret(s3_server, tmp_path, fresh_credentials):
    store = make_s3_store(s3_server)
    reg = open_registry(tmp_path / "registry", store)
    wrong = "wrong-secret-0123456789abcdef"
    # given the remote's secret replaced by a wrong one
    dvc.remote_modify(reg.path, REMOTE_NAME, "secret_access_key", wrong, local=True)
    (reg.path / "blob.bin").write_bytes(b"x")
    dvc.add(reg.path, "blob.bin")
    # when a push is refused, then the error explains the failure without the secret in it
    with pytest.raises(dvc.DvcError) as caught:
        dvc.push(reg.path, "blob.bin.dvc", remote=REMOTE_NAME)
    assert caught.value.returncode != 0
    assert wrong not in str(caught.value) and wrong not in caught.value.stderr and wrong not in caught.value.stdout
    assert wrong not in " ".join(caught.value.args_)


def test_other_secret_options_go_to_a_private_config_local_not_argv(tmp_path, fresh_credentials):
    # given a repository with an HTTP remote (not S3: its password cannot travel in the environment)
    repo = tmp_path / "repo"
    dvc.init(repo, no_scm=True)
    dvc.remote_add(repo, "web", "https://example.invalid/dvc")
    with CmdlineWatcher("hunter2-password") as watcher:
        # when its password is set
        dvc.remote_modify(repo, "web", "password", "hunter2-password", local=True)
    # then it sits only in config.local, which is mode 0600, and no command line ever held it
    local = repo / ".dvc" / "config.local"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert dvc.read_config(repo, local=True)['remote "web"']["password"] == "hunter2-password"
    assert watcher.leaks == []
    assert "hunter2-password" not in (repo / ".dvc" / "config").read_text()
