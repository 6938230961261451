"""The object store: the same behaviour on the local folder and on a real S3 server."""

from __future__ import annotations

import socket
import time

import pytest
from urllib3.exceptions import ProtocolError

from tests.support.stores import make_s3_store
from vigil.core.hashing import sha256_bytes
from vigil.io.store import (
    ChecksumMismatch,
    LocalStore,
    ObjectExists,
    ObjectLocked,
    RetryPolicy,
    S3Store,
    StoreError,
    StoreUnavailable,
    content_key,
    put_content_addressed,
    quarantine,
)


def test_put_get_roundtrip_records_checksum(store):
    # given some bytes
    data = b"frame bytes" * 1000
    # when they are stored
    info = store.put_bytes("a/b/c.bin", data)
    # then they come back identical, with their sha256 recorded
    assert store.get_bytes("a/b/c.bin") == data
    assert info.size == len(data)
    assert info.sha256 == sha256_bytes(data)
    assert store.stat("missing") is None
    with pytest.raises(KeyError):
        store.get_bytes("missing")


def test_if_absent_never_overwrites(store):
    store.put_bytes("k", b"first")
    with pytest.raises(ObjectExists):
        store.put_bytes("k", b"second", if_absent=True)
    assert store.get_bytes("k") == b"first"


def test_content_addressed_put_is_idempotent(store, tmp_path):
    # given a media file
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"x" * 100)
    # when it is stored twice
    key1, new1 = put_content_addressed(store, path, suffix=".mp4")
    key2, new2 = put_content_addressed(store, path, suffix=".mp4")
    # then it is stored once, under its hash
    assert key1 == key2 == content_key(sha256_bytes(path.read_bytes()), "raw", ".mp4")
    assert (new1, new2) == (True, False)
    assert list(store.list_keys("raw/")) == [key1]


def test_list_is_sorted_and_prefixed(store):
    for key in ["x/2", "x/1", "y/1", "x/10"]:
        store.put_bytes(key, key.encode())
    assert list(store.list_keys("x/")) == ["x/1", "x/10", "x/2"]


def test_quarantine_keeps_blob_and_machine_readable_reason(store):
    prefix = quarantine(store, reason="not_media", detail="HTML error page", source="http://h/x.mp4",
                        data=b"<html>oops</html>")
    record = store.get_json(f"{prefix}/reason.json")
    assert record["reason"] == "not_media"
    assert record["source"] == "http://h/x.mp4"
    assert store.get_bytes(f"{prefix}/blob") == b"<html>oops</html>"


def test_local_store_rejects_escaping_keys(tmp_path):
    store = LocalStore(tmp_path)
    for bad in ["/abs", "../up", "a/../../b", ""]:
        with pytest.raises(StoreError):
            store.put_bytes(bad, b"x")


def test_s3_multipart_upload_is_verified(s3_server, monkeypatch):
    # given an object larger than one part (parts shrunk so the test stays small)
    import vigil.io.store as store_mod

    monkeypatch.setattr(store_mod, "PART_SIZE", 5 * 1024 * 1024)
    store = make_s3_store(s3_server)
    data = bytes(range(256)) * (11 * 1024 * 1024 // 256)
    # when it is uploaded in three parts
    info = store.put_bytes("big.bin", data)
    # then the multipart ETag matched the local computation and the bytes are intact
    assert info.etag.endswith("-3")
    assert store.get_bytes("big.bin") == data


def test_s3_checksum_mismatch_is_detected(s3_server, monkeypatch):
    # given a server answer whose ETag does not match what was sent (a corrupted upload)
    import vigil.io.store as store_mod

    store = make_s3_store(s3_server)
    monkeypatch.setattr(store_mod, "_multipart_etag", lambda path, part: "0" * 32)
    # then the upload fails loudly instead of recording a corrupt object as good
    with pytest.raises(ChecksumMismatch):
        store.put_bytes("x", b"payload")


def test_s3_readonly_identity_is_refused_writes(s3_server):
    writable = make_s3_store(s3_server)
    reader = S3Store(s3_server.endpoint, s3_server.readonly_access_key, s3_server.readonly_secret_key,
                     writable.bucket, create_bucket=False)
    with pytest.raises(StoreError):
        reader.put_bytes("nope", b"x")


def test_s3_locked_object_cannot_be_deleted(s3_server):
    # given a bucket with object lock and an object under GOVERNANCE retention
    store = make_s3_store(s3_server, object_lock=True)
    store.put_bytes("ledger/events/000000000000.json", b"{}", retain_days=1)
    # when someone tries to delete it, then the server refuses and it is still there
    with pytest.raises(ObjectLocked):
        store.delete("ledger/events/000000000000.json")
    assert store.get_bytes("ledger/events/000000000000.json") == b"{}"


def test_unreachable_endpoint_is_a_clear_error():
    from vigil.io.procs import free_port

    # given an endpoint where nothing listens, when a store is opened with the default retries
    endpoint = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach S3 endpoint") as caught:
        S3Store(endpoint, "a", "b", "vigil")
    # then it gives up within seconds, naming the endpoint, the bucket and what to run
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert f"http://{endpoint}" in message and "bucket 'vigil'" in message and "vigil store check" in message
    assert caught.value.exit_code == 3


FAST = RetryPolicy(attempts=2, first_delay_s=0.05, max_delay_s=0.1, connect_timeout_s=1.0, read_timeout_s=1.0)


def _dead_store():
    from vigil.io.procs import free_port

    return S3Store(f"127.0.0.1:{free_port()}", "a", "b", "dead", create_bucket=False, retry=FAST)


@pytest.mark.parametrize("op", ["get_bytes", "get_json", "put_bytes", "put_if_absent", "put_json", "stat", "exists",
                                "list_keys", "delete", "download", "check", "content_addressed", "quarantine"])
def test_every_s3_operation_on_a_dead_endpoint_raises_store_unavailable(op, tmp_path):
    # given a store whose endpoint is down
    store = _dead_store()
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"media bytes")
    calls = {
        "get_bytes": lambda: store.get_bytes("k/a"),
        "get_json": lambda: store.get_json("k/a"),
        "put_bytes": lambda: store.put_bytes("k/a", b"x"),
        "put_if_absent": lambda: store.put_bytes("k/a", b"x", if_absent=True),
        "put_json": lambda: store.put_json("k/a", {"a": 1}, if_absent=True),
        "stat": lambda: store.stat("k/a"),
        "exists": lambda: store.exists("k/a"),
        "list_keys": lambda: list(store.list_keys("k/")),
        "delete": lambda: store.delete("k/a"),
        "download": lambda: store.download("k/a", tmp_path / "out.bin"),
        "check": store.check,
        "content_addressed": lambda: put_content_addressed(store, blob),
        "quarantine": lambda: quarantine(store, reason="not_media", detail="d", source="http://h/x", data=b"x"),
    }
    # when any operation runs, then it fails as a StoreError (exit 3), never a raw urllib3 error
    with pytest.raises(StoreUnavailable) as caught:
        calls[op]()
    message = str(caught.value)
    assert store.endpoint_url in message and "'dead'" in message and "vigil store check" in message, message
    assert "after 2 attempts" in message, message
    assert not (tmp_path / "out.bin").exists() and not list(tmp_path.glob(".out.bin*"))


def test_a_silent_server_times_out_instead_of_hanging():
    # given a port that accepts connections but never answers (a hung server)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        endpoint = "127.0.0.1:%d" % listener.getsockname()[1]
        store = S3Store(endpoint, "a", "b", "silent", create_bucket=False,
                        retry=RetryPolicy(attempts=2, first_delay_s=0.05, connect_timeout_s=0.5, read_timeout_s=0.5))
        # when a read is made, then the bounded read timeout ends it in about a second, not minutes
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="ReadTimeoutError|timed out"):
            store.get_bytes("k")
        assert time.monotonic() - started < 10


class _DropsOnce:
    """A real minio client whose ``method`` fails once with a dropped connection.

    ``land``: the server did the work before the answer was lost; ``meanwhile``: what happens on the
    server between the failure and the retry (another writer).
    """

    def __init__(self, client, method: str, *, land: bool, meanwhile=None) -> None:
        self._client, self._method, self._land, self._meanwhile = client, method, land, meanwhile
        self.failures = 0

    def __getattr__(self, name):
        real = getattr(self._client, name)
        if name != self._method:
            return real

        def drops_once(*args, **kwargs):
            if self.failures == 0:
                self.failures += 1
                if self._land:
                    real(*args, **kwargs)
                if self._meanwhile:
                    self._meanwhile()
                raise ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
            return real(*args, **kwargs)

        return drops_once


def test_a_dropped_connection_is_retried(s3_server):
    # given a stored object and a connection that drops once on the next read
    store = make_s3_store(s3_server, retry=FAST)
    store.put_bytes("k", b"payload")
    store.client = _DropsOnce(store.client, "get_object", land=False)
    # when it is read, then the retry returns the bytes
    assert store.get_bytes("k") == b"payload"
    assert store.client.failures == 1


def test_if_absent_put_whose_answer_was_lost_is_not_reported_as_existing(s3_server):
    # given an upload that lands on the server but whose answer is lost
    store = make_s3_store(s3_server, retry=FAST)
    store.client = _DropsOnce(store.client, "_put_object", land=True)  # small if_absent: one conditional PUT
    # when it is retried under if_absent, then it succeeds: the object there is this call's own write
    info = store.put_bytes("raw/ab/abc", b"content-addressed", if_absent=True)
    assert store.client.failures == 1
    assert info.sha256 == sha256_bytes(b"content-addressed")
    assert store.get_bytes("raw/ab/abc") == b"content-addressed"


def test_if_absent_retry_still_refuses_an_object_someone_else_wrote(s3_server):
    # given an upload whose connection drops before it lands, while another writer stores other bytes
    store = make_s3_store(s3_server, retry=FAST)
    other = S3Store(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, store.bucket)
    store.client = _DropsOnce(store.client, "_put_object", land=False,
                              meanwhile=lambda: other.put_bytes("raw/k", b"the other writer's bytes"))
    # when the retry runs, then it reports ObjectExists and leaves the other writer's object alone
    with pytest.raises(ObjectExists):
        store.put_bytes("raw/k", b"my bytes", if_absent=True)
    assert store.get_bytes("raw/k") == b"the other writer's bytes"


def test_a_clip_quarantined_twice_keeps_both_reasons(store):
    # given a clip quarantined at validation, then excluded by an operator (same source, no bytes)
    first = quarantine(store, reason="validation:fps", detail="fps 0.5 < 1.0", source="raw/ab/abc.mp4")
    second = quarantine(store, reason="excluded", detail="a person says so", source="raw/ab/abc.mp4")
    # then there is one record, with the newest reason on top and the first one kept under "earlier"
    assert first == second
    record = store.get_json(f"{second}/reason.json")
    assert record["reason"] == "excluded"
    assert [r["reason"] for r in record["earlier"]] == ["validation:fps"]
