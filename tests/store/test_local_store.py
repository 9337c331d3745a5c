"""The folder store: where it writes, what it refuses, and that large files stream."""

from __future__ import annotations

import os
import stat
import tracemalloc
from pathlib import Path

import pytest

from campaign.errors import StoreError
from campaign.store import open_store
from campaign.store.local import LocalStore

MiB = 1024 * 1024


def test_open_store_gives_a_folder_store_with_absolute_addresses(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_store("relative/store")

    assert isinstance(store, LocalStore)
    assert store.where("runs/r1/run.json") == f"{tmp_path}/relative/store/runs/r1/run.json"


def test_missing_root_is_created_on_first_write(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "not" / "yet" / "there")

    store.put_bytes(b"x", "runs/r1/run.json")

    assert (tmp_path / "not/yet/there/runs/r1/run.json").read_bytes() == b"x"


def test_root_that_cannot_be_created_is_reported_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    store = LocalStore(tmp_path / "a-file" / "store")

    with pytest.raises(StoreError) as raised:
        store.probe()

    message = str(raised.value)
    assert f"cannot create the folder {tmp_path}/a-file/store" in message
    assert "Create it yourself (and make it writable), or pass another --store." in message


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "source.bin").write_bytes(os.urandom(5 * MiB))

    store.put_file(tmp_path / "source.bin", "out/a.bin")
    store.put_bytes(b"x", "out/b.txt")
    store.probe()

    assert sorted(os.listdir(tmp_path / "out")) == ["a.bin", "b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out", "source.bin"]


def test_large_files_are_streamed_not_read_whole(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(64 * MiB))
    store = LocalStore(tmp_path / "store")

    tracemalloc.start()
    try:
        store.put_file(tmp_path / "big.bin", "big.bin")
        store.content_digest("big.bin")
        store.download("big.bin", tmp_path / "back.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 16 * MiB


def test_a_file_still_being_written_is_refused(tmp_path: Path, appending_to) -> None:
    source = tmp_path / "growing.log"
    source.write_bytes(os.urandom(32 * MiB))
    store = LocalStore(tmp_path / "store")

    growing = pytest.raises(StoreError, match=f"{source} changed while it was being stored")
    with appending_to(source), growing:
        store.put_file(source, "logs/growing.log")

    assert os.listdir(tmp_path / "store" / "logs") == []  # neither the file nor a temp file


def test_a_write_the_disk_does_not_keep_is_refused_and_the_old_version_kept(tmp_path: Path, monkeypatch) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes(b"version 1", "runs/r1/manifest.json")
    real_fsync = os.fsync

    def fsync_that_damages_files(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.pwrite(fd, b"#", 0)  # what a failing disk or filesystem might do
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_that_damages_files)
    with pytest.raises(StoreError, match=f"^wrote {tmp_path}/store/runs/r1/manifest.json but reading it back gave"):
        store.put_bytes(b"version 2", "runs/r1/manifest.json")
    monkeypatch.undo()

    assert store.get_bytes("runs/r1/manifest.json") == b"version 1"
    assert os.listdir(tmp_path / "store" / "runs" / "r1") == ["manifest.json"]


def test_a_missing_source_file_is_named(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")

    with pytest.raises(StoreError, match=f"cannot read {tmp_path}/nope.txt to store it as"):
        store.put_file(tmp_path / "nope.txt", "nope.txt")
