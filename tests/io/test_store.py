"""The object store: the same behaviour on the local folder and on a real S3 server."""

from __future__ import annotations

import pytest

from tests.support.stores import make_s3_store
from vigil.core.hashing import sha256_bytes
from vigil.io.store import (
    ChecksumMismatch,
    LocalStore,
    ObjectExists,
    ObjectLocked,
    StoreError,
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
    from vigil.io.store import S3Store

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
    from vigil.io.store import S3Store

    with pytest.raises(StoreError, match="cannot reach S3 endpoint"):
        S3Store(f"127.0.0.1:{free_port()}", "a", "b", "vigil")
