"""One object-store API over a local folder (the embedded default) or any S3 endpoint (MinIO).

Everything Vigil keeps (raw media, quarantine, DVC remote, ledger, reports, model artifacts)
goes through this module. Two promises hold for both back-ends:

* every upload is verified: the stored bytes are checked against the local checksum, and a
  mismatch raises :class:`ChecksumMismatch` instead of leaving a silently corrupt object;
* ``if_absent=True`` never overwrites: content-addressed media and ledger events are written once.

Keys are '/'-separated; the local back-end maps ``bucket/key`` onto ``root/bucket/key`` so that a
folder and a bucket hold the same layout (the DVC remote under ``dvc/`` reads the same either way).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_mod
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vigil.config.errors import ConflictError, ServiceError
from vigil.core.hashing import sha256_bytes, sha256_file

# Objects up to this size go up in one part, so that the ETag is the plain MD5 we can compare.
PART_SIZE = 64 * 1024 * 1024


class StoreError(ServiceError):
    """A store operation failed; the message names the object and what to do."""


class ObjectExists(StoreError, ConflictError):
    """``if_absent`` was asked and the key is already taken."""


class ObjectLocked(StoreError):
    """The object is under retention or legal hold and cannot be deleted or overwritten."""


class ChecksumMismatch(StoreError):
    """The stored bytes differ from what was sent."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None
    etag: str | None = None
    last_modified: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _multipart_etag(path: Path, part_size: int) -> str:
    """The ETag S3 gives an object uploaded in ``part_size`` parts: md5 of the part md5s + '-N'."""
    digests = []
    with open(path, "rb") as fh:
        while chunk := fh.read(part_size):
            digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    if len(digests) <= 1:
        return _md5_hex(path.read_bytes())
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


class ObjectStore(ABC):
    """The store interface every Vigil module uses. Keys never start with '/'."""

    bucket: str

    @abstractmethod
    def put_file(
        self,
        key: str,
        path: str | Path,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
        retain_days: int = 0,
    ) -> ObjectInfo:
        """Upload ``path`` to ``key``, verified by checksum. ``retain_days`` > 0 locks it (S3)."""

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
        retain_days: int = 0,
    ) -> ObjectInfo:
        with tempfile.TemporaryDirectory(prefix="vigil-put-") as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(data)
            return self.put_file(
                key, path, content_type=content_type, metadata=metadata,
                if_absent=if_absent, retain_days=retain_days,
            )

    def put_json(self, key: str, value: object, **kwargs) -> ObjectInfo:
        data = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
        return self.put_bytes(key, data, content_type="application/json", **kwargs)

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; :class:`KeyError` if there is none."""

    def get_json(self, key: str) -> object:
        return json.loads(self.get_bytes(key))

    @abstractmethod
    def download(self, key: str, path: str | Path) -> Path:
        """Copy the object to ``path`` (atomically); :class:`KeyError` if there is none."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """The object's info, or None when absent."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    @abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, recursively, in lexical order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; :class:`ObjectLocked` if retention forbids it."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """A URI naming the object for people and records (``s3://…`` or ``file://…``)."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Where this store points, without secrets."""

    @abstractmethod
    def check(self) -> None:
        """One request that proves the endpoint, credentials and bucket work; raises StoreError."""


class LocalStore(ObjectStore):
    """A folder laid out like a bucket. No server; the embedded default."""

    def __init__(self, root: str | Path, bucket: str = "vigil") -> None:
        self.root = Path(root).absolute()
        self.bucket = bucket
        self.base = self.root / bucket

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"invalid object key {key!r}: use a relative '/'-separated key")
        return self.base / key

    def put_file(self, key, path, *, content_type="application/octet-stream", metadata=None,
                 if_absent=False, retain_days=0):
        src = Path(path)
        dest = self._path(key)
        expected = sha256_file(src)
        if if_absent and dest.exists():
            raise ObjectExists(f"{self.uri(key)} already exists; content-addressed objects are never overwritten")
        if not if_absent and dest.exists() and not os.access(dest, os.W_OK):
            raise ObjectLocked(f"{self.uri(key)} is locked (read-only) and cannot be overwritten")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                while chunk := inp.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if sha256_file(tmp) != expected:
                raise ChecksumMismatch(f"{self.uri(key)}: written bytes differ from {src}")
            if if_absent:
                try:
                    os.link(tmp, dest)  # atomic create-if-absent
                except FileExistsError as exc:
                    raise ObjectExists(f"{self.uri(key)} already exists") from exc
            else:
                os.replace(tmp, dest)
            sidecar = {"content_type": content_type, "sha256": expected, **(metadata or {})}
            self._meta_path(dest).write_text(json.dumps(sidecar, sort_keys=True))
            if retain_days > 0:
                dest.chmod(stat_mod.S_IRUSR | stat_mod.S_IRGRP | stat_mod.S_IROTH)
        finally:
            tmp.unlink(missing_ok=True)
        return self.stat(key)  # type: ignore[return-value]

    @staticmethod
    def _meta_path(dest: Path) -> Path:
        return dest.with_name(f".{dest.name}.meta.json")

    def get_bytes(self, key):
        path = self._path(key)
        if not path.is_file():
            raise KeyError(self.uri(key))
        return path.read_bytes()

    def download(self, key, path):
        data_path = self._path(key)
        if not data_path.is_file():
            raise KeyError(self.uri(key))
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        with open(data_path, "rb") as inp, open(tmp, "wb") as out:
            while chunk := inp.read(1 << 20):
                out.write(chunk)
        tmp.replace(dest)
        return dest

    def stat(self, key):
        path = self._path(key)
        if not path.is_file():
            return None
        st = path.stat()
        meta_path = self._meta_path(path)
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return ObjectInfo(
            key=key, size=st.st_size, sha256=meta.get("sha256"),
            last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
            metadata={k: str(v) for k, v in meta.items()},
        )

    def list_keys(self, prefix=""):
        if not self.base.exists():
            return iter(())
        keys = []
        for path in self.base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.base).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key):
        path = self._path(key)
        if path.exists() and not os.access(path, os.W_OK) and os.geteuid() != 0:
            raise ObjectLocked(f"{self.uri(key)} is locked")
        if path.exists() and not (path.stat().st_mode & stat_mod.S_IWUSR):
            raise ObjectLocked(f"{self.uri(key)} is locked (read-only retention)")
        path.unlink(missing_ok=True)
        self._meta_path(path).unlink(missing_ok=True)

    def uri(self, key=""):
        return (self.base / key).as_uri() if key else self.base.as_uri()

    def describe(self):
        return {"backend": "local", "root": str(self.root), "bucket": self.bucket}

    def check(self):
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            probe = self.base / f".vigil-check-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"local store {self.base} is not writable: {exc}") from exc


class S3Store(ObjectStore):
    """An S3 bucket through the ``minio`` SDK (MinIO, SeaweedFS, AWS)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str = "vigil",
        *,
        secure: bool = False,
        region: str | None = None,
        object_lock: bool = False,
        create_bucket: bool = True,
    ) -> None:
        from minio import Minio

        self.endpoint = endpoint
        self.secure = secure
        self.region = region
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.object_lock = object_lock
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key,
                            secure=secure, region=region)
        if create_bucket:
            self.ensure_bucket()

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def ensure_bucket(self) -> None:
        from minio.error import S3Error

        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket, object_lock=self.object_lock)
        except S3Error as exc:
            raise StoreError(f"cannot create or read bucket {self.bucket!r} at {self.endpoint_url}: {exc.code}: {exc.message}") from exc
        except Exception as exc:  # urllib3 connection errors carry no S3 code
            raise StoreError(f"cannot reach S3 endpoint {self.endpoint_url}: {exc}") from exc

    def put_file(self, key, path, *, content_type="application/octet-stream", metadata=None,
                 if_absent=False, retain_days=0):
        from minio.commonconfig import GOVERNANCE
        from minio.error import S3Error
        from minio.retention import Retention

        src = Path(path)
        if if_absent and self.exists(key):
            raise ObjectExists(f"{self.uri(key)} already exists; content-addressed objects are never overwritten")
        expected_sha = sha256_file(src)
        meta = {"sha256": expected_sha, **(metadata or {})}
        retention = None
        if retain_days > 0:
            until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=retain_days)
            retention = Retention(GOVERNANCE, until)
        size = src.stat().st_size
        try:
            with open(src, "rb") as fh:
                result = self.client.put_object(
                    self.bucket, key, fh, size, content_type=content_type, metadata=meta,
                    part_size=PART_SIZE, retention=retention,
                )
        except S3Error as exc:
            if exc.code in {"AccessDenied", "ObjectLocked", "InvalidRequest"} and self.exists(key):
                raise ObjectLocked(f"{self.uri(key)}: {exc.code}: {exc.message}") from exc
            raise StoreError(f"upload of {src} to {self.uri(key)} failed: {exc.code}: {exc.message}") from exc
        expected_etag = _multipart_etag(src, PART_SIZE)
        got_etag = (result.etag or "").strip('"')
        if got_etag and got_etag != expected_etag:
            raise ChecksumMismatch(
                f"{self.uri(key)}: server ETag {got_etag} != local {expected_etag}; the upload was corrupted"
            )
        info = self.stat(key)
        if info is None or info.size != size:
            raise ChecksumMismatch(f"{self.uri(key)}: stored size differs from {size} bytes")
        return info

    def get_bytes(self, key):
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject"}:
                raise KeyError(self.uri(key)) from exc
            raise StoreError(f"read of {self.uri(key)} failed: {exc.code}") from exc
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def download(self, key, path):
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        tmp.write_bytes(self.get_bytes(key))
        tmp.replace(dest)
        return dest

    def stat(self, key):
        from minio.error import S3Error

        try:
            st = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}:
                return None
            raise StoreError(f"stat of {self.uri(key)} failed: {exc.code}") from exc
        meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (st.metadata or {}).items()
                if k.lower().startswith("x-amz-meta-")}
        return ObjectInfo(key=key, size=st.size or 0, sha256=meta.get("sha256"),
                          etag=(st.etag or "").strip('"'), last_modified=st.last_modified, metadata=meta)

    def list_keys(self, prefix=""):
        objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
        return iter(sorted(o.object_name for o in objects if not o.is_dir))

    def delete(self, key):
        from minio.error import S3Error

        try:
            if self.object_lock:
                # A plain delete on a versioned bucket only adds a delete marker, which hides a
                # locked object without removing it. Delete each version instead, so that
                # retention is what decides, and a refusal surfaces as ObjectLocked.
                for version in self.client.list_objects(self.bucket, prefix=key, include_version=True):
                    if version.object_name == key and version.version_id:
                        self.client.remove_object(self.bucket, key, version_id=version.version_id)
            else:
                self.client.remove_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in {"AccessDenied", "ObjectLocked", "InvalidRequest"}:
                raise ObjectLocked(f"{self.uri(key)} is under retention: {exc.message}") from exc
            raise StoreError(f"delete of {self.uri(key)} failed: {exc.code}") from exc

    def uri(self, key=""):
        return f"s3://{self.bucket}/{key}"

    def describe(self):
        return {"backend": "s3", "endpoint": self.endpoint_url, "bucket": self.bucket}

    def check(self):
        self.ensure_bucket()
        try:
            list(self.client.list_objects(self.bucket, prefix="__vigil_check__"))
        except Exception as exc:
            raise StoreError(f"S3 endpoint {self.endpoint_url} refused a listing of {self.bucket!r}: {exc}") from exc


def content_key(sha256: str, prefix: str = "raw", suffix: str = "") -> str:
    """Content-addressed key: ``raw/ab/abcdef….mp4`` (fan-out keeps listings small)."""
    return f"{prefix}/{sha256[:2]}/{sha256}{suffix}"


def put_content_addressed(store: ObjectStore, path: str | Path, *, prefix: str = "raw",
                          suffix: str = "", content_type: str = "application/octet-stream",
                          metadata: dict[str, str] | None = None) -> tuple[str, bool]:
    """Store ``path`` under its sha256; returns (key, newly_stored). Existing objects stay as they are."""
    from vigil.core.hashing import sha256_file as _sha

    digest = _sha(path)
    key = content_key(digest, prefix, suffix)
    if store.exists(key):
        return key, False
    try:
        store.put_file(key, path, content_type=content_type, metadata=metadata, if_absent=True)
    except ObjectExists:
        return key, False
    return key, True


def quarantine(store: ObjectStore, *, reason: str, detail: str, source: str,
               data: bytes | None = None, path: str | Path | None = None,
               extra: dict | None = None) -> str:
    """Keep a rejected item with a machine-readable reason; returns the quarantine prefix.

    The reason record is ``quarantine/<id>/reason.json`` with ``reason`` (a stable code),
    ``detail`` (for people), ``source`` (URL or key) and the time; the bytes, when given, sit
    beside it as ``blob``. The id is the content hash when there are bytes, else the source's.
    """
    if path is not None:
        blob_id = sha256_file(path)
    elif data is not None:
        blob_id = sha256_bytes(data)
    else:
        blob_id = sha256_bytes(source.encode())
    prefix = f"quarantine/{blob_id[:2]}/{blob_id}"
    if path is not None and not store.exists(f"{prefix}/blob"):
        store.put_file(f"{prefix}/blob", path)
    elif data is not None and not store.exists(f"{prefix}/blob"):
        store.put_bytes(f"{prefix}/blob", data)
    record = {
        "reason": reason,
        "detail": detail,
        "source": source,
        "time": datetime.now(timezone.utc).isoformat(),
        "has_blob": path is not None or data is not None,
        **(extra or {}),
    }
    store.put_json(f"{prefix}/reason.json", record)
    return prefix


__all__ = [
    "ChecksumMismatch", "LocalStore", "ObjectExists", "ObjectInfo", "ObjectLocked", "ObjectStore",
    "S3Store", "StoreError", "content_key", "put_content_addressed", "quarantine",
]
