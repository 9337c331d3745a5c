"""Which writes fsync: only what a power loss must not take, each once (see the comments in files.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from campaign.run.journal import RUNNING, STARTED, Journal
from campaign.store.local import LocalStore


@pytest.fixture
def fsyncs(monkeypatch) -> list[int]:
    """The file descriptors fsynced from now on, in order."""
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return synced


def test_a_durable_write_syncs_its_bytes_and_its_new_name(tmp_path: Path, fsyncs: list[int]):
    store = LocalStore(tmp_path / "store")
    store.put_bytes(b"manifest", "runs/r1/manifest.json")
    assert len(fsyncs) == 2
    store.put_bytes(b"manifest, again", "runs/r1/manifest.json")  # the name exists: its folder is not synced
    assert len(fsyncs) == 3


def test_a_durable_file_upload_syncs_its_bytes_and_its_new_name(tmp_path: Path, fsyncs: list[int]):
    log = tmp_path / "stage.log"
    log.write_bytes(b"a log\n")
    LocalStore(tmp_path / "store").put_file(log, "runs/r1/logs/stage.log")
    assert len(fsyncs) == 2


def test_rederivable_bytes_and_downloads_are_not_synced(tmp_path: Path, fsyncs: list[int]):
    store = LocalStore(tmp_path / "store")
    store.put_bytes(b"segment\n", "runs/r1/journal/000001.jsonl", durable=False)
    assert fsyncs == []
    store.download("runs/r1/journal/000001.jsonl", tmp_path / "copy.jsonl")
    assert fsyncs == [] and (tmp_path / "copy.jsonl").read_bytes() == b"segment\n"


def test_a_journal_entry_costs_one_fsync_and_its_mirror_none(tmp_path: Path, fsyncs: list[int]):
    journal = Journal(tmp_path / "run" / "journal.jsonl", LocalStore(tmp_path / "store"), "runs/r1/journal.jsonl")
    journal.record("run", state=STARTED)
    assert len(fsyncs) == 2  # the new journal file and its folder; the compacted copy in the store: none
    journal.record("stage", stage_run="a", state=RUNNING)
    assert len(fsyncs) == 3
