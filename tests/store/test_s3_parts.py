"""The multipart path of the S3 store: one hashing pass, parts sent with their digests, checks intact."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from campaign.errors import StoreError
from campaign.store import s3_parts
from campaign.store.s3 import S3Store

from .conftest import SMALL_PARTS

MiB = 1024 * 1024


@pytest.fixture
def proxied_store(s3_bucket: str, flaky_proxy, monkeypatch):
    """start(**faults) -> an S3Store (5 MiB parts) talking through a proxy that checks checksums as S3 does."""

    def start(**faults: dict[str, int]) -> S3Store:
        proxy = flaky_proxy(**faults)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        return S3Store.from_url(f"s3://{s3_bucket}/prefix", settings=SMALL_PARTS)

    return start


def test_hash_parts_gives_the_full_digest_and_the_composite_s3_computes(tmp_path: Path):
    data = os.urandom(11 * MiB + 5)
    (tmp_path / "f").write_bytes(data)
    with open(tmp_path / "f", "rb") as file:
        hashed = s3_parts.hash_parts(file.fileno(), len(data), 5 * MiB)
    parts = [hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    assert hashed.digest.sha256 == hashlib.sha256(data).hexdigest() and hashed.digest.size == len(data)
    assert hashed.part_digests == tuple(parts)
    assert hashed.composite == s3_parts.base64_text(hashlib.sha256(b"".join(parts)).digest()) + "-3"


def test_a_part_damaged_on_the_way_up_aborts_the_upload(proxied_store, s3_client, s3_bucket: str, tmp_path: Path):
    store = proxied_store(corrupt={"PUT": 2})  # the second part's body is damaged
    (tmp_path / "data.bin").write_bytes(os.urandom(12 * MiB))
    with pytest.raises(StoreError, match="BadDigest"):
        store.put_file(tmp_path / "data.bin", "runs/r1/outputs/data.bin")
    assert store.stat("runs/r1/outputs/data.bin") is None
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_a_file_changed_between_hashing_and_sending_is_refused(proxied_store, monkeypatch, tmp_path: Path):
    """Same size and mtime, other bytes: the part's digest from the hashing pass no longer matches."""
    store = proxied_store()
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(12 * MiB))
    hash_then_change = s3_parts.hash_parts

    def changed_after_hashing(fd: int, size: int, part_size: int) -> s3_parts.HashedParts:
        hashed = hash_then_change(fd, size, part_size)
        before = os.stat(path)
        with open(path, "r+b") as file:
            file.seek(7 * MiB)
            file.write(b"changed")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        return hashed

    monkeypatch.setattr(s3_parts, "hash_parts", changed_after_hashing)
    with pytest.raises(StoreError, match="BadDigest"):
        store.put_file(path, "runs/r1/outputs/data.bin")
    assert store.stat("runs/r1/outputs/data.bin") is None


def test_a_multipart_object_s3_misreports_is_refused_and_deleted(proxied_store, tmp_path: Path):
    store = proxied_store(misreport={"HEAD": 1})
    (tmp_path / "data.bin").write_bytes(os.urandom(12 * MiB))
    with pytest.raises(StoreError, match="but S3 reports 12582912 bytes with SHA-256 checksum"):
        store.put_file(tmp_path / "data.bin", "runs/r1/outputs/data.bin")
    assert store.stat("runs/r1/outputs/data.bin") is None


def test_a_file_that_shrinks_while_being_read_is_an_error(tmp_path: Path):
    (tmp_path / "f").write_bytes(b"short")
    with open(tmp_path / "f", "rb") as file, pytest.raises(OSError, match="ended at byte 5, before the 10"):
        s3_parts.read_range(file.fileno(), 0, 10)
