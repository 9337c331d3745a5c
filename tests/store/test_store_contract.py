"""What every store promises (base.Store), checked against the folder store and S3 (moto) alike."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from campaign.errors import Conflict, NotInStore, StoreError
from campaign.store import Artifact, Store

MiB = 1024 * 1024


def artifact_of(key: str, data: bytes) -> Artifact:
    return Artifact(key, len(data), hashlib.sha256(data).hexdigest())


def test_put_bytes_round_trip(store: Store) -> None:
    data = b'{"commit": "abc123"}\n'

    artifact = store.put_bytes(data, "runs/r1/run.json")

    assert artifact == artifact_of("runs/r1/run.json", data)
    assert store.get_bytes("runs/r1/run.json") == data
    assert store.stat("runs/r1/run.json") == artifact
    assert store.content_digest("runs/r1/run.json") == artifact


def test_put_file_round_trip(store: Store, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    (tmp_path / "tpch.jsonl").write_bytes(data)

    artifact = store.put_file(tmp_path / "tpch.jsonl", "runs/r1/outputs/tpch.jsonl")

    assert artifact == artifact_of("runs/r1/outputs/tpch.jsonl", data)
    assert store.get_bytes("runs/r1/outputs/tpch.jsonl") == data


def test_put_file_of_multipart_size_is_verified_and_reads_back(store: Store, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB + 12345)  # 3 parts of 5 MiB for the S3 store, the last one short
    (tmp_path / "lineitem.parquet").write_bytes(data)

    artifact = store.put_file(tmp_path / "lineitem.parquet", "cache/tpch-sf1/lineitem.parquet")

    assert artifact == artifact_of("cache/tpch-sf1/lineitem.parquet", data)
    assert store.stat(artifact.key) == artifact
    assert store.verify(artifact) is None
    assert store.verify(artifact, deep=True) is None
    store.download(artifact.key, tmp_path / "back.parquet")
    assert (tmp_path / "back.parquet").read_bytes() == data


def test_put_replaces_an_existing_object(store: Store) -> None:
    store.put_bytes(b"first", "runs/r1/journal.jsonl")

    second = store.put_bytes(b"second, longer", "runs/r1/journal.jsonl")

    assert store.get_bytes("runs/r1/journal.jsonl") == b"second, longer"
    assert store.stat("runs/r1/journal.jsonl") == second


@pytest.mark.parametrize("deep", [False, True], ids=["shallow", "deep"])
@pytest.mark.parametrize(
    "replacement", [b"tampered!", b"much longer tampered content"], ids=["same-size", "other-size"]
)
def test_verify_detects_an_object_changed_behind_the_stores_back(
    store: Store, overwrite_behind_back, deep: bool, replacement: bytes
) -> None:
    artifact = store.put_bytes(b"original!", "runs/r1/manifest.json")
    overwrite_behind_back(store, "runs/r1/manifest.json", replacement)

    problem = store.verify(artifact, deep=deep)

    stored = artifact_of(artifact.key, replacement)
    if stored.size == artifact.size:
        assert problem == f"{store.where(artifact.key)} has sha256 {stored.sha256}, the manifest says {artifact.sha256}"
    else:
        assert problem == f"{store.where(artifact.key)} is {stored.size} bytes, the manifest says {artifact.size}"


@pytest.mark.parametrize("deep", [False, True], ids=["shallow", "deep"])
def test_verify_reports_a_missing_object(store: Store, deep: bool) -> None:
    artifact = artifact_of("runs/r1/never-written.log", b"x")

    assert store.verify(artifact, deep=deep) == f"{store.where(artifact.key)} is missing"


def test_missing_key_is_not_in_store(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotInStore, match=f"^{store.where('runs/r9/run.json')} is not in the store"):
        store.get_bytes("runs/r9/run.json")
    with pytest.raises(NotInStore):
        store.download("runs/r9/run.json", tmp_path / "run.json")
    assert store.stat("runs/r9/run.json") is None
    assert store.content_digest("runs/r9/run.json") is None


def test_listing(store: Store) -> None:
    for key in [
        "runs/r1/run.json",
        "runs/r1/logs/build.log",
        "runs/r2/run.json",
        "runs-old/x",
        "cache/k/data",
    ]:
        store.put_bytes(b"x", key)

    assert store.list_keys("runs/") == ["runs/r1/logs/build.log", "runs/r1/run.json", "runs/r2/run.json"]
    assert store.list_keys("runs/r1/") == ["runs/r1/logs/build.log", "runs/r1/run.json"]
    assert store.list_keys("runs") == [
        "runs-old/x",
        "runs/r1/logs/build.log",
        "runs/r1/run.json",
        "runs/r2/run.json",
    ]
    assert len(store.list_keys("")) == 5
    assert store.list_keys("nothing/") == []
    assert store.list_children("runs/") == ["r1", "r2"]
    assert store.list_children("runs") == ["r1", "r2"]
    assert store.list_children("runs/r1/") == ["logs", "run.json"]
    assert store.list_children("") == ["cache", "runs", "runs-old"]
    assert store.list_children("nothing/") == []


def test_listings_leave_out_what_an_interrupted_probe_or_write_left(store: Store, overwrite_behind_back) -> None:
    store.put_bytes(b"{}", "runs/r1/run.json")
    overwrite_behind_back(store, "runs/.campaign-probe-0123456789abcdef", b"probe")
    overwrite_behind_back(store, "runs/r1/.campaign-tmp-0123456789abcdef", b"half a file")

    assert store.list_keys("") == ["runs/r1/run.json"]
    assert store.list_children("runs/") == ["r1"]
    assert store.list_children("runs/r1/") == ["run.json"]


def test_download_replaces_the_destination_whole_or_not_at_all(store: Store, tmp_path: Path) -> None:
    destination = tmp_path / "downloads" / "run.json"
    destination.parent.mkdir()
    destination.write_bytes(b"old content")

    with pytest.raises(NotInStore):
        store.download("runs/r1/run.json", destination)
    assert destination.read_bytes() == b"old content"
    assert os.listdir(destination.parent) == ["run.json"]

    store.put_bytes(b"new content", "runs/r1/run.json")
    store.download("runs/r1/run.json", destination)
    assert destination.read_bytes() == b"new content"
    assert os.listdir(destination.parent) == ["run.json"]  # no temp file left behind


def test_download_creates_missing_folders(store: Store, tmp_path: Path) -> None:
    store.put_bytes(b"data", "runs/r1/outputs/a.txt")

    store.download("runs/r1/outputs/a.txt", tmp_path / "new" / "folder" / "a.txt")

    assert (tmp_path / "new" / "folder" / "a.txt").read_bytes() == b"data"


def test_probe_succeeds_and_leaves_nothing_behind(store: Store) -> None:
    store.probe()

    assert store.list_keys("") == []


@pytest.mark.parametrize("key", ["../escape", "runs/../../escape", "/etc/passwd", "runs//x", "./x", "runs/..", ""])
def test_keys_leaving_the_store_are_refused(store: Store, key: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="refusing key"):
        store.put_bytes(b"x", key)
    with pytest.raises(StoreError, match="refusing key"):
        store.get_bytes(key)
    with pytest.raises(StoreError, match="refusing key"):
        store.list_keys(f"{key}/")
    assert not (tmp_path / "escape").exists()


# -- conditional writes (the lease's building block) ----------------------------------------------


def test_conditional_create_succeeds_once(store: Store) -> None:
    tag = store.put_conditional(b"agent-1", "runs/r1/lease.json", expect=None)
    with pytest.raises(Conflict):
        store.put_conditional(b"agent-2", "runs/r1/lease.json", expect=None)
    assert store.read_versioned("runs/r1/lease.json") == (b"agent-1", tag)


def test_conditional_replace_needs_the_current_version(store: Store) -> None:
    first = store.put_conditional(b"beat-1", "runs/r1/lease.json", expect=None)
    second = store.put_conditional(b"beat-2", "runs/r1/lease.json", expect=first)
    assert second != first
    with pytest.raises(Conflict):
        store.put_conditional(b"stale agent", "runs/r1/lease.json", expect=first)
    assert store.get_bytes("runs/r1/lease.json") == b"beat-2"


def test_delete_and_read_versioned_of_an_absent_key(store: Store) -> None:
    store.put_bytes(b"x", "runs/r1/lease.json")
    store.delete("runs/r1/lease.json")
    store.delete("runs/r1/lease.json")  # absent is fine
    assert store.read_versioned("runs/r1/lease.json") is None
    assert store.put_conditional(b"again", "runs/r1/lease.json", expect=None)
    assert store.list_keys("runs/r1/") == ["runs/r1/lease.json"]  # no lock or temp files listed
