"""The journal in the store: one segment per entry, merges, compaction, and the one reader.

The reader (`stored_journal`) must give back exactly the local journal's bytes whatever point a
writer stopped at, and stop at the first entry no segment holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from campaign.errors import NotInStore, StoreError
from campaign.run import journal as journal_module
from campaign.run.journal import (
    FAILED,
    RUNNING,
    STARTED,
    SUCCEEDED,
    Journal,
    read_entries,
    restore_journal,
    segment_key,
    stored_journal,
)
from campaign.store import Store
from campaign.store.local import LocalStore

KEY = "runs/r1/journal.jsonl"
SEGMENTS = "runs/r1/journal/"


def record_stages(journal: Journal, count: int) -> None:
    for index in range(count):
        journal.record("stage", stage_run=f"s{index}", state=RUNNING if index % 2 else SUCCEEDED)


def local_bytes(journal: Journal) -> bytes:
    return journal.path.read_bytes()


def test_each_entry_goes_up_as_a_segment_of_its_own(store: Store, tmp_path: Path):
    journal = Journal(tmp_path / "journal.jsonl", store, KEY)
    journal.record("run", state=STARTED)  # the session's first mirror compacts
    record_stages(journal, 3)
    assert store.list_keys(SEGMENTS) == [segment_key(KEY, n) for n in (1, 2, 3)]
    assert [len(read_entries(store.get_bytes(segment_key(KEY, n)))) for n in (1, 2, 3)] == [1, 1, 1]
    assert read_entries(store.get_bytes(segment_key(KEY, 3)))[0]["stage_run"] == "s2"
    assert stored_journal(store, KEY) == local_bytes(journal)


def test_segments_are_merged_and_the_run_end_compacts_everything(store: Store, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(journal_module, "SEGMENTS_PER_MERGE", 4)
    journal = Journal(tmp_path / "journal.jsonl", store, KEY)
    journal.record("run", state=STARTED)
    record_stages(journal, 10)
    assert store.list_keys(SEGMENTS) == [segment_key(KEY, n) for n in (1, 5, 9, 10)]
    assert len(read_entries(store.get_bytes(segment_key(KEY, 5)))) == 4
    assert stored_journal(store, KEY) == local_bytes(journal)

    journal.record("run", state=FAILED, reason="s3 failed")
    assert store.list_keys(SEGMENTS) == []
    assert store.get_bytes(KEY) == local_bytes(journal)


def test_what_a_mirror_uploads_does_not_grow_with_the_journal(tmp_path: Path):
    """Whole-file mirroring would upload about n/2 journals' worth for n entries; segments about two."""
    uploaded = []

    class Counting(LocalStore):
        def put_bytes(self, data: bytes, key: str, *, durable: bool = True):
            uploaded.append(len(data))
            return super().put_bytes(data, key, durable=durable)

    journal = Journal(tmp_path / "journal.jsonl", Counting(tmp_path / "store"), KEY)
    record_stages(journal, 300)
    assert sum(uploaded) < 2.2 * len(local_bytes(journal))
    assert max(uploaded[-10:]) < 200  # the last entries each went up alone


def test_a_reader_stops_at_a_missing_segment(store: Store, tmp_path: Path):
    journal = Journal(tmp_path / "journal.jsonl", store, KEY)
    journal.record("run", state=STARTED)
    record_stages(journal, 4)
    store.delete(segment_key(KEY, 3))
    entries = read_entries(stored_journal(store, KEY))
    assert [e["seq"] for e in entries] == [0, 1, 2]


def test_a_reader_stops_at_a_torn_segment(store: Store, tmp_path: Path):
    """An emptied or half-written segment (a power loss before it reached the disk) ends the journal there."""
    journal = Journal(tmp_path / "journal.jsonl", store, KEY)
    journal.record("run", state=STARTED)
    record_stages(journal, 4)
    whole = store.get_bytes(segment_key(KEY, 2))
    store.put_bytes(whole[: len(whole) // 2], segment_key(KEY, 2))
    assert [e["seq"] for e in read_entries(stored_journal(store, KEY))] == [0, 1]


def test_no_journal_at_all_is_not_in_store(store: Store):
    with pytest.raises(NotInStore):
        stored_journal(store, KEY)


def test_segments_without_a_compacted_journal_are_read_from_entry_zero(store: Store):
    store.put_bytes(b'{"seq": 0}\n{"seq": 1}\n', segment_key(KEY, 0))
    store.put_bytes(b'{"seq": 2}\n', segment_key(KEY, 2))
    assert stored_journal(store, KEY) == b'{"seq": 0}\n{"seq": 1}\n{"seq": 2}\n'


def test_a_failed_mirror_goes_up_with_the_next_entry(tmp_path: Path):
    failing = {"next": False}

    class Flaky(LocalStore):
        def put_bytes(self, data: bytes, key: str, *, durable: bool = True):
            if failing["next"]:
                failing["next"] = False
                raise StoreError(f"cannot write {key}: the test says no")
            return super().put_bytes(data, key, durable=durable)

    store = Flaky(tmp_path / "store")
    journal = Journal(tmp_path / "journal.jsonl", store, KEY)
    journal.record("run", state=STARTED)
    failing["next"] = True
    with pytest.raises(StoreError, match="the test says no"):
        journal.record("stage", stage_run="a", state=RUNNING)
    journal.record("stage", stage_run="a", state=SUCCEEDED)
    assert store.list_keys(SEGMENTS) == [segment_key(KEY, 1)]
    assert stored_journal(store, KEY) == local_bytes(journal)


def test_a_reader_racing_a_merge_reads_again(tmp_path: Path, monkeypatch):
    """A segment listed, then merged away before it is fetched: the reader starts over and gets it all."""
    monkeypatch.setattr(journal_module, "SEGMENTS_PER_MERGE", 3)
    store = LocalStore(tmp_path / "store")
    journal = Journal(tmp_path / "journal.jsonl", store, KEY)
    journal.record("run", state=STARTED)
    record_stages(journal, 2)
    original_get = LocalStore.get_bytes
    raced = []

    def get_then_merge(self: LocalStore, key: str) -> bytes:
        if key == segment_key(KEY, 1) and not raced:
            raced.append(key)
            record_stages(journal, 1)  # the third segment: merged into segment 1, 2 and 3 deleted
        return original_get(self, key)

    monkeypatch.setattr(LocalStore, "get_bytes", get_then_merge)
    assert stored_journal(store, KEY) == local_bytes(journal)
    assert raced and store.list_keys(SEGMENTS) == [segment_key(KEY, 1)]


def test_a_new_machine_restores_the_journal_exactly_and_continues_it(store: Store, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(journal_module, "SEGMENTS_PER_MERGE", 4)
    first = Journal(tmp_path / "first" / "journal.jsonl", store, KEY)
    first.record("run", state=STARTED)
    record_stages(first, 9)
    restored = tmp_path / "second" / "journal.jsonl"
    restore_journal(store, KEY, restored)
    assert restored.read_bytes() == local_bytes(first)

    second = Journal(restored, store, KEY)
    second.record("run", state=STARTED)  # the new session compacts: no segment of the old one is left
    assert store.list_keys(SEGMENTS) == []
    record_stages(second, 2)
    assert stored_journal(store, KEY) == restored.read_bytes()
    assert [e["seq"] for e in read_entries(restored.read_bytes())] == list(range(13))


def test_restore_keeps_an_existing_local_journal(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    store.put_bytes(b'{"seq": 0, "from": "store"}\n', KEY)
    local = tmp_path / "journal.jsonl"
    local.write_bytes(b'{"seq": 0, "from": "here"}\n')
    restore_journal(store, KEY, local)
    assert local.read_bytes() == b'{"seq": 0, "from": "here"}\n'


CRASHING_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from campaign.run import journal as journal_module
    from campaign.store.local import LocalStore
    journal_module.SEGMENTS_PER_MERGE = 4
    tmp = Path(sys.argv[1])
    journal = journal_module.Journal(tmp / "journal.jsonl", LocalStore(tmp / "store"), "runs/r1/journal.jsonl")
    journal.record("run", state="started")
    for index in range(6):
        journal.record("stage", stage_run=f"s{index}", state="running")
    journal.record("run", state="succeeded")
    print("the crash point was never reached")
""")


@pytest.mark.parametrize("site, left", [("journal.merge", [1, 2, 3, 4]), ("journal.compact:2", [1, 5, 6])])
def test_a_crash_between_writing_and_deleting_segments_loses_nothing(tmp_path: Path, site: str, left: list[int]):
    """kill -9 after the merged segment / compacted journal is written, before the old segments go."""
    env = {**os.environ, "CAMPAIGN_FAULT": site}
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(tmp_path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == -9, result.stdout + result.stderr
    store = LocalStore(tmp_path / "store")
    assert store.list_keys(SEGMENTS) == [segment_key(KEY, n) for n in left]  # the stale ones are still there
    assert stored_journal(store, KEY) == (tmp_path / "journal.jsonl").read_bytes()

    resumed = Journal(tmp_path / "journal.jsonl", store, KEY)
    resumed.record("run", state=STARTED)
    assert store.list_keys(SEGMENTS) == []
    assert stored_journal(store, KEY) == (tmp_path / "journal.jsonl").read_bytes()
