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
import logging
import os
import stat as stat_mod
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from vigil.config.errors import ConflictError, ServiceError
from vigil.core.hashing import sha256_bytes, sha256_file

log = logging.getLogger(__name__)
T = TypeVar("T")

# Objects up to this size go up in one part, so that the ETag is the plain MD5 we can compare.
PART_SIZE = 64 * 1024 * 1024
# Largest create-if-absent upload sent as one conditional PUT (read into memory whole); larger ones look first.
CONDITIONAL_PUT_MAX = 8 * 1024 * 1024


class StoreError(ServiceError):
    """A store operation failed; the message names the object and what to do."""


class ObjectExists(StoreError, ConflictError):
    """``if_absent`` was asked and the key is already taken."""


class ObjectLocked(StoreError):
    """The object is under retention or legal hold and cannot be deleted or overwritten."""


class ChecksumMismatch(StoreError):
    """The stored bytes differ from what was sent."""


class StoreUnavailable(StoreError):
    """The store did not answer (refused, reset, timed out, 5xx) through every retry."""


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


def _replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all, so a concurrent reader never sees it half written."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


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
            _replace_text(self._meta_path(dest), json.dumps(sidecar, sort_keys=True))
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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with open(data_path, "rb") as inp, os.fdopen(fd, "wb") as out:
                while chunk := inp.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp_name, dest)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return dest

    def stat(self, key):
        path = self._path(key)
        if not path.is_file():
            return None
        st = path.stat()
        meta_path = self._meta_path(path)
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        except ValueError:  # a sidecar damaged by hand: the object itself is still there
            meta = {}
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


@dataclass(frozen=True)
class RetryPolicy:
    """How S3 operations ride out a store that is briefly away (a restart, a dropped connection).

    Every S3 request is tried up to ``attempts`` times, sleeping ``first_delay_s`` × 2ⁿ (at most
    ``max_delay_s``) in between; each try gives up connecting after ``connect_timeout_s`` and on a
    silent server after ``read_timeout_s``. The default costs a dead endpoint (connection refused)
    0.5 + 1 + 2 = 3.5 s, one that drops packets 4 × 5 s more: a failed crawl or ingest says so in
    seconds, not after minio's own default of minutes. Frozen, so a test passes a short one.
    """

    attempts: int = 4
    first_delay_s: float = 0.5
    max_delay_s: float = 4.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")

    def delay_after(self, attempt: int) -> float:
        """Seconds to sleep after failed try number ``attempt`` (1-based)."""
        return min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1))


DEFAULT_RETRY = RetryPolicy()

# S3 error codes that mean "the service is overloaded or restarting", not "your request is wrong".
_TRANSIENT_CODES = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
                              "OperationAborted", "Throttling"})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})


def _root_cause(exc: BaseException) -> BaseException:
    """urllib3 wraps the real failure (refused, reset, timed out) in MaxRetryError.reason."""
    from urllib3.exceptions import MaxRetryError

    return exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc


def _is_tls_failure(exc: BaseException) -> bool:
    import ssl

    from urllib3.exceptions import SSLError

    return isinstance(_root_cause(exc), (SSLError, ssl.SSLError))


def _is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: no connection, a dropped one, a timeout, a 5xx or 429."""
    import http.client

    from minio.error import InvalidResponseError, S3Error, ServerError
    from urllib3.exceptions import HTTPError as TransportError

    if _is_tls_failure(exc):
        return False  # a certificate problem does not heal in a few seconds
    if isinstance(exc, (TransportError, ConnectionError, TimeoutError, http.client.HTTPException, ServerError)):
        return True
    if isinstance(exc, InvalidResponseError):
        return int(getattr(exc, "_code", 0) or 0) >= 500 or getattr(exc, "_code", 0) == 429
    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        return exc.code in _TRANSIENT_CODES or status >= 500 or status == 429
    return False


def _short(exc: BaseException) -> str:
    cause = _root_cause(exc)
    return f"{type(cause).__name__}: {cause}"[:300]


def _http_client(retry: RetryPolicy):
    """minio's HTTP client with bounded timeouts and no retries of its own (:meth:`S3Store._call` retries).

    minio's default waits 5 minutes to connect and retries 5 times inside urllib3, so a dead endpoint
    hung a crawl for half an hour. Redirects are handed back to minio, which handles S3's itself.
    """
    import certifi
    import urllib3

    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=retry.connect_timeout_s, read=retry.read_timeout_s),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0,
                              raise_on_redirect=False, raise_on_status=False),
    )


class S3Store(ObjectStore):
    """An S3 bucket through the ``minio`` SDK (MinIO, SeaweedFS, AWS).

    Every request goes through :meth:`_call`: transport failures and 5xx answers are retried under
    ``retry`` (:class:`RetryPolicy`), then raised as :class:`StoreUnavailable` naming the endpoint,
    bucket, key and operation. Nothing a caller sees is a raw urllib3 or minio exception.
    """

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
        retry: RetryPolicy | None = None,
    ) -> None:
        from minio import Minio

        self.endpoint = endpoint
        self.secure = secure
        self.region = region
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.object_lock = object_lock
        self.retry = retry or DEFAULT_RETRY
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key,
                            secure=secure, region=region, http_client=_http_client(self.retry))
        if create_bucket:
            self.ensure_bucket()

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def _target(self, key: str | None, what: str = "key") -> str:
        return f"{what} {key!r} in bucket {self.bucket!r}" if key is not None else f"bucket {self.bucket!r}"

    def _call(self, op: str, target: str, fn: Callable[[], T]) -> T:
        """Run one S3 operation, retrying what a retry can cure (see :class:`RetryPolicy`).

        A non-transient :class:`minio.error.S3Error` is passed up for the caller to map (NoSuchKey is
        a KeyError, AccessDenied an ObjectLocked, …); every other failure becomes a StoreError here.
        """
        from minio.error import MinioException, S3Error

        started = time.monotonic()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return fn()
            except (StoreError, KeyError):
                raise
            except Exception as exc:
                if _is_tls_failure(exc):
                    raise StoreError(
                        f"TLS failed talking to S3 endpoint {self.endpoint_url} ({op} of {target}): {_short(exc)}; "
                        "check the endpoint's certificate (SSL_CERT_FILE) and whether it speaks https at all"
                    ) from exc
                if not _is_transient(exc):
                    if isinstance(exc, S3Error):
                        raise
                    if isinstance(exc, MinioException):
                        raise StoreError(f"S3 endpoint {self.endpoint_url} gave an unexpected answer to {op} of "
                                         f"{target}: {_short(exc)}; is it an S3 server?") from exc
                    raise
                if attempt == self.retry.attempts:
                    elapsed = time.monotonic() - started
                    raise StoreUnavailable(
                        f"cannot reach S3 endpoint {self.endpoint_url}: {op} of {target} failed after {attempt} "
                        f"attempt{'s' if attempt > 1 else ''} over {elapsed:.1f}s ({_short(exc)}). Check that the "
                        "store is up and the endpoint is right (`vigil store check`), then run the command again"
                    ) from exc
                delay = self.retry.delay_after(attempt)
                log.warning("S3 %s of %s at %s failed (%s); try %d of %d in %.1fs", op, target, self.endpoint_url,
                            _short(exc), attempt + 1, self.retry.attempts, delay)
                time.sleep(delay)
        raise AssertionError("RetryPolicy.attempts is at least 1")  # pragma: no cover

    def ensure_bucket(self) -> None:
        from minio.error import S3Error

        def attempt() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket, object_lock=self.object_lock)

        try:
            self._call("create-or-read", self._target(None), attempt)
        except S3Error as exc:
            if exc.code == "BucketAlreadyOwnedByYou":  # a concurrent creator won the race: fine
                return
            raise StoreError(f"cannot create or read bucket {self.bucket!r} at {self.endpoint_url}: "
                             f"{exc.code}: {exc.message}") from exc

    def _stat_raw(self, key: str):
        """One stat_object request; None when the object is absent (not retried: callers run it in _call)."""
        from minio.error import S3Error

        try:
            return self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                return None
            raise

    @staticmethod
    def _info(key: str, st) -> ObjectInfo:
        meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (st.metadata or {}).items()
                if k.lower().startswith("x-amz-meta-")}
        return ObjectInfo(key=key, size=st.size or 0, sha256=meta.get("sha256"),
                          etag=(st.etag or "").strip('"'), last_modified=st.last_modified, metadata=meta)

    def put_file(self, key, path, *, content_type="application/octet-stream", metadata=None,
                 if_absent=False, retain_days=0):
        """Upload and verify; safe to retry (see below).

        With ``if_absent``, a retry first looks whether the object is there: a put whose answer was
        lost may have landed. If the object there carries this file's sha256 and size it is this
        call's own write (or an identical content-addressed one) and the put succeeds; anything else
        there is :class:`ObjectExists`. The check and the put are two requests, so two writers racing
        on one key can still both write; keys written ``if_absent`` are content-addressed or unique,
        where that race stores identical bytes — except for small objects (ledger events, records,
        up to :data:`CONDITIONAL_PUT_MAX`), sent with ``If-None-Match: *`` so that the server itself
        refuses the second writer (S3, MinIO and SeaweedFS honour it; a server that ignores it falls back to the
        look-then-put above). A multipart upload cut off mid-way is restarted whole; the abandoned
        parts are left to the bucket's lifecycle rules.
        """
        from minio.commonconfig import GOVERNANCE
        from minio.error import S3Error
        from minio.retention import Retention

        src = Path(path)
        size = src.stat().st_size
        conditional = if_absent and size <= CONDITIONAL_PUT_MAX
        # Looked up first even before a conditional PUT: a server that ignores If-None-Match would overwrite.
        if if_absent and self.exists(key):
            raise ObjectExists(f"{self.uri(key)} already exists; content-addressed objects are never overwritten")
        expected_sha = sha256_file(src)
        meta = {"sha256": expected_sha, **(metadata or {})}
        retention = None
        if retain_days > 0:
            until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=retain_days)
            retention = Retention(GOVERNANCE, until)
        tries = 0

        def attempt():
            nonlocal tries
            tries += 1
            if if_absent and tries > 1:
                landed = self._stat_raw(key)
                if landed is not None:
                    info = self._info(key, landed)
                    if info.sha256 == expected_sha and info.size == size:
                        log.info("%s: the put whose answer was lost had landed; not writing it again", self.uri(key))
                        return landed
                    raise ObjectExists(f"{self.uri(key)} was written by someone else while this upload was retried")
            if conditional:
                return self._put_if_none_match(key, src.read_bytes(), content_type, meta, retention)
            with open(src, "rb") as fh:
                return self.client.put_object(
                    self.bucket, key, fh, size, content_type=content_type, metadata=meta,
                    part_size=PART_SIZE, retention=retention,
                )

        try:
            result = self._call("upload", self._target(key), attempt)
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

    def _put_if_none_match(self, key: str, data: bytes, content_type: str, meta: dict, retention):
        """One conditional PUT: the server refuses it when ``key`` exists (two machines racing for one
        ledger sequence number cannot both win). minio's public put_object cannot send the header, so
        this goes through its single-request upload, the one put_object itself uses for small files."""
        from minio.error import S3Error
        from minio.helpers import genheaders

        headers = genheaders(meta, None, None, retention, False)
        headers["Content-Type"] = content_type or "application/octet-stream"
        headers["If-None-Match"] = "*"
        try:
            return self.client._put_object(self.bucket, key, data, headers)
        except S3Error as exc:
            if exc.code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise ObjectExists(f"{self.uri(key)} already exists (the server refused a second writer)") from exc
            raise

    def get_bytes(self, key):
        from minio.error import S3Error

        def attempt() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        try:
            return self._call("read", self._target(key), attempt)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                raise KeyError(self.uri(key)) from exc
            raise StoreError(f"read of {self.uri(key)} failed: {exc.code}: {exc.message}") from exc

    def download(self, key, path):
        """Stream the object to ``path`` through a temporary file; a retry starts the file over."""
        from minio.error import S3Error

        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")

        def attempt() -> None:
            response = self.client.get_object(self.bucket, key)
            try:
                with open(tmp, "wb") as out:
                    for chunk in response.stream(1 << 20):
                        out.write(chunk)
            finally:
                response.close()
                response.release_conn()

        try:
            self._call("download", self._target(key), attempt)
        except S3Error as exc:
            tmp.unlink(missing_ok=True)
            if exc.code in _NOT_FOUND_CODES:
                raise KeyError(self.uri(key)) from exc
            raise StoreError(f"download of {self.uri(key)} failed: {exc.code}: {exc.message}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dest)
        return dest

    def stat(self, key):
        from minio.error import S3Error

        try:
            st = self._call("stat", self._target(key), lambda: self._stat_raw(key))
        except S3Error as exc:
            raise StoreError(f"stat of {self.uri(key)} failed: {exc.code}: {exc.message}") from exc
        return None if st is None else self._info(key, st)

    def list_keys(self, prefix=""):
        """Listed in full inside one retried call: a listing cut off half-way is started over, never half-returned."""
        from minio.error import S3Error

        def attempt() -> list[str]:
            objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted(o.object_name for o in objects if not o.is_dir)

        try:
            return iter(self._call("list", self._target(prefix, "prefix"), attempt))
        except S3Error as exc:
            raise StoreError(f"listing {self.uri(prefix)} failed: {exc.code}: {exc.message}") from exc

    def delete(self, key):
        from minio.error import S3Error

        def attempt() -> None:
            if self.object_lock:
                # A plain delete on a versioned bucket only adds a delete marker, which hides a
                # locked object without removing it. Delete each version instead, so that
                # retention is what decides, and a refusal surfaces as ObjectLocked.
                for version in self.client.list_objects(self.bucket, prefix=key, include_version=True):
                    if version.object_name == key and version.version_id:
                        self.client.remove_object(self.bucket, key, version_id=version.version_id)
            else:
                self.client.remove_object(self.bucket, key)  # idempotent: a retry after it landed is a no-op

        try:
            self._call("delete", self._target(key), attempt)
        except S3Error as exc:
            if exc.code in {"AccessDenied", "ObjectLocked", "InvalidRequest"}:
                raise ObjectLocked(f"{self.uri(key)} is under retention: {exc.message}") from exc
            raise StoreError(f"delete of {self.uri(key)} failed: {exc.code}: {exc.message}") from exc

    def uri(self, key=""):
        return f"s3://{self.bucket}/{key}"

    def describe(self):
        return {"backend": "s3", "endpoint": self.endpoint_url, "bucket": self.bucket}

    def check(self):
        from minio.error import S3Error

        self.ensure_bucket()
        try:
            self._call("list", self._target(None),
                       lambda: list(self.client.list_objects(self.bucket, prefix="__vigil_check__")))
        except S3Error as exc:
            raise StoreError(f"S3 endpoint {self.endpoint_url} refused a listing of {self.bucket!r}: "
                             f"{exc.code}: {exc.message}") from exc


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
    beside it as ``blob``. The id is the content hash when there are bytes, else the source's, so
    one clip quarantined again (at validation after the crawl, by an operator's exclusion) keeps one
    record: the newest reason on top, the earlier ones under ``earlier``.
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
    try:
        previous = store.get_json(f"{prefix}/reason.json")
    except (KeyError, ValueError):
        previous = None
    if isinstance(previous, dict):
        earlier = previous.pop("earlier", [])
        record["earlier"] = [*earlier, previous] if previous.get("reason") else earlier
    store.put_json(f"{prefix}/reason.json", record)
    return prefix


__all__ = [
    "DEFAULT_RETRY", "ChecksumMismatch", "LocalStore", "ObjectExists", "ObjectInfo", "ObjectLocked", "ObjectStore",
    "RetryPolicy", "S3Store", "StoreError", "StoreUnavailable", "content_key", "put_content_addressed", "quarantine",
]
