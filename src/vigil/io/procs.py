"""Child servers on loopback (S3 for tests, the model server): a free port and waiting for ready."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx

from vigil.config.errors import ServiceError


class NotReady(ServiceError):
    """The child exited or never answered; the message carries the reason."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the caller binds it soon after; races are retried there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_http_ready(process: subprocess.Popen, url: str, *, timeout_s: float,
                    ready: Callable[[int], bool] = lambda status: status == 200,
                    poll_s: float = 0.1) -> None:
    """Poll ``url`` until ``ready(status)``; raise :class:`NotReady` if the child exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise NotReady(f"exited with {process.returncode}")
            try:
                if ready(client.get(url).status_code):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise NotReady(f"not ready after {timeout_s:.0f} s")
            time.sleep(poll_s)
