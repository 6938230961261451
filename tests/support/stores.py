"""Stores for tests: a fresh bucket on the suite's S3 server per call."""

from __future__ import annotations

import uuid

from vigil.io.store import S3Store
from vigil.testing.s3 import S3Server


def make_s3_store(server: S3Server, **kwargs) -> S3Store:
    """A fresh bucket per call, so tests never see each other's objects."""
    return S3Store(server.endpoint, server.access_key, server.secret_key,
                   f"test-{uuid.uuid4().hex[:12]}", **kwargs)
