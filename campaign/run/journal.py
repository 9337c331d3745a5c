"""The journal: append-only JSON Lines of run and stage-run transitions, mirrored to the store.

It is the source of truth for `status`, `logs` and resume. A torn last line, left by a crash
mid-write, is dropped on read and never parsed as data.

In the store a journal is `runs/<id>/journal.jsonl` (the compacted part) plus numbered segments
`runs/<id>/journal/<first>.jsonl`, each holding the entries that follow from entry number <first>
on. Every transition goes up as a segment of its own, so a mirror costs what is new, not the whole
journal; every SEGMENTS_PER_MERGE segments are merged into the first of them (so a reader fetches few
objects), and the whole journal is compacted into journal.jsonl when a session starts and when the
run ends. `stored_journal` is the one way to read it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign.errors import NotInStore, StoreError
from campaign.faults import crash_point, die, reached
from campaign.jsonl import cut_torn_tail, write_all
from campaign.run.entries import Entry, entry_fields, entry_problem
from campaign.store import Store
from campaign.store.files import fsync_folder, write_atomically
from campaign.system.clock import now_iso

# Stage-run states and run states.
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = "pending", "running", "succeeded", "failed", "skipped"
STARTED, INTERRUPTED = "started", "interrupted"
INVALIDATED = "invalidated"  # a succeeded stage run whose outputs failed verification on resume
RUN_ENDED = (SUCCEEDED, FAILED, INTERRUPTED)

SEGMENTS_PER_MERGE = 64  # bounds what a reader fetches to the merged segments plus at most this many
SEGMENT_SUFFIX = ".jsonl"
READ_ATTEMPTS = 3  # a reader racing a merge or a compaction reads again


class Journal:
    """Appends entries to a local file (fsync'd) and mirrors each one to the store as it happens.

    Opening an existing journal (a resume) first cuts a torn last line, so new entries never
    follow half an entry. The session's first mirror compacts the whole local journal into the
    store (which heals whatever an earlier session left there); later ones upload only what is new.
    """

    def __init__(self, path: Path, store: Store, key: str):
        self.path, self.store, self.key = path, store, key
        cut_torn_tail(path)
        self.entries = read_entries(path.read_bytes(), str(path)) if path.exists() else []
        self._in_store: int | None = None  # entries the store holds; None until this session compacts
        self._unmirrored: list[bytes] = []  # lines appended here but not yet in the store
        self._unmerged: list[tuple[int, bytes]] = []  # (first entry, bytes) of segments since the last merge

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        entry = {"seq": len(self.entries), "ts": now_iso(), "kind": kind, **fields}
        line = json.dumps(entry, sort_keys=True)
        crash_point("journal.append")
        append_line(self.path, line)
        self.entries.append(entry)
        self._unmirrored.append((line + "\n").encode("utf-8"))
        crash_point("journal.mirror")
        if kind == "run" and fields.get("state") in RUN_ENDED:
            self.compact()  # the run's last write: journal.jsonl alone holds the whole journal again
        else:
            self.mirror()
        return entry

    def append(self, entry: Entry) -> dict[str, Any]:
        """Journal a typed entry (campaign.run.entries owns their fields)."""
        return self.record(entry.kind, **entry_fields(entry))

    def mirror(self) -> None:
        """Bring the store up to date: the entries not yet there go up as one segment."""
        if self._in_store is None:
            self.compact()
            return
        if not self._unmirrored:
            return
        first, data = self._in_store, b"".join(self._unmirrored)
        # Not durable: the local journal (fsync'd) can write it again, and a session starts by compacting.
        self.store.put_bytes(data, segment_key(self.key, first), durable=False)
        self._in_store += len(self._unmirrored)
        self._unmirrored.clear()
        self._unmerged.append((first, data))
        if len(self._unmerged) >= SEGMENTS_PER_MERGE:
            self._merge_segments()

    def compact(self) -> None:
        """Write the whole local journal as journal.jsonl, then delete every segment (all covered by it)."""
        data = self.path.read_bytes() if self.path.exists() else b""
        self.store.put_bytes(data, self.key, durable=False)  # re-derivable from the local journal
        self._in_store = len(self.entries)
        self._unmirrored.clear()
        self._unmerged.clear()
        crash_point("journal.compact")  # leaves segments the compacted journal covers: readers skip them
        for key in self.store.list_keys(segment_prefix(self.key)):
            self.store.delete(key)

    def _merge_segments(self) -> None:
        """Rewrite the first unmerged segment with all of their entries, then delete the others."""
        first = self._unmerged[0][0]
        merged = b"".join(data for _, data in self._unmerged)
        self.store.put_bytes(merged, segment_key(self.key, first), durable=False)
        later = [start for start, _ in self._unmerged[1:]]
        self._unmerged.clear()  # the merged segment is final: later merges start after it
        crash_point("journal.merge")  # leaves segments the merged one covers: readers skip them
        for start in later:
            self.store.delete(segment_key(self.key, start))


def segment_prefix(key: str) -> str:
    """Where the segments of the journal stored at key go: runs/<id>/journal.jsonl -> runs/<id>/journal/."""
    return key.removesuffix(SEGMENT_SUFFIX) + "/"


def segment_key(key: str, first: int) -> str:
    return f"{segment_prefix(key)}{first:06d}{SEGMENT_SUFFIX}"


def stored_journal(store: Store, key: str) -> bytes:
    """The journal stored at key as one JSON-Lines text: journal.jsonl, then every segment continuing it.

    Reading stops at the first entry no segment holds (a gap, or a torn or emptied segment after a
    power loss): like a torn last line, what follows cannot be trusted to follow. Raises NotInStore
    when the store has no journal at key.
    """
    for _ in range(READ_ATTEMPTS):
        try:
            return _read_stored(store, key)
        except _ChangedWhileRead:
            continue
    raise StoreError(
        f"the journal {store.where(key)} changed under every one of {READ_ATTEMPTS} reads "
        "(its writer merges segments as it goes). Try again in a moment."
    )


class _ChangedWhileRead(Exception):
    """A segment listed a moment ago is gone: a merge or compaction happened; read again."""


def _read_stored(store: Store, key: str) -> bytes:
    # Listing first: a compaction after it leaves a journal.jsonl that covers every listed segment.
    segments = _segments(store, key)
    try:
        lines = _complete_lines(store.get_bytes(key))
    except NotInStore:
        if not segments:
            raise
        lines = []
    for first, segment in segments:
        if first > len(lines):
            break  # a gap: nothing after it is trusted
        try:
            held = _complete_lines(store.get_bytes(segment))
        except NotInStore:
            raise _ChangedWhileRead() from None
        lines += held[len(lines) - first :]
    return b"".join(lines)


def _segments(store: Store, key: str) -> list[tuple[int, str]]:
    """(first entry, key) of each segment, in order; names that are not segments are ignored."""
    found = []
    for segment in store.list_keys(segment_prefix(key)):
        number = segment.rpartition("/")[2].removesuffix(SEGMENT_SUFFIX)
        if number.isdigit() and segment.endswith(SEGMENT_SUFFIX):
            found.append((int(number), segment))
    return sorted(found)


def _complete_lines(data: bytes) -> list[bytes]:
    """The complete (newline-ended) lines of data; a torn tail is not a line."""
    return [line + b"\n" for line in data.split(b"\n")[:-1]]


def restore_journal(store: Store, key: str, path: Path) -> None:
    """A new machine continues from the store's journal: write it to path (durably), unless path exists."""
    if path.exists():
        return
    try:
        data = stored_journal(store, key)
    except NotInStore:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, [data], durable=True)  # from now on the local journal is the source of truth


def append_line(path: Path, line: str) -> None:
    """Append one line with a single write and fsync, so a crash leaves at most a torn last line."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        creating = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if reached("journal.torn"):
                os.write(fd, data[: len(data) // 2])
                os.fsync(fd)
                die()
            write_all(fd, data)
            os.fsync(fd)  # the journal is the source of truth: an entry counts once it is on disk
        finally:
            os.close(fd)
        if creating:
            fsync_folder(path.parent)  # a new file's name must survive a power loss too, not only its bytes
    except OSError as error:
        raise StoreError(
            f"cannot append to the journal {path}: {error.strerror or error}. The entries before are intact "
            "(a partial last one is cut on resume). Free space or raise the file-size limit, then "
            "`campaign resume` the run."
        ) from error


def read_entries(data: bytes, where: str = "the journal") -> list[dict]:
    """Entries in order; an incomplete or unparsable last line (a crash mid-append) is dropped.

    A damaged line anywhere else, or an entry without the fields every entry has, is a StoreError naming
    where and the line: the journal is the run's record, so it is never silently skipped.
    """
    lines = data.decode("utf-8", "replace").split("\n")
    entries = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if index >= len(lines) - 2:  # the last line, torn by a crash: not data
                break
            raise _damaged(where, index + 1, f"is not JSON: {line[:80]!r}") from None
        problem = entry_problem(entry)
        if problem:
            raise _damaged(where, index + 1, problem)
        entries.append(entry)
    return entries


def _damaged(where: str, line: int, problem: str) -> StoreError:
    return StoreError(
        f"{where} is damaged: line {line} {problem}. Campaign wrote none of it; the journal is the "
        "run's record, so nothing reads past it. Restore the file from the other copy (the store's "
        "runs/<id>/journal.jsonl or the run folder's journal.jsonl), or start a new run."
    )


@dataclass
class StageRunStatus:
    id: str
    state: str = PENDING
    attempts: int = 0
    exit_code: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    log: str | None = None
    reason: str = ""


@dataclass
class RunStatus:
    run_id: str
    state: str = "unknown"
    reason: str = ""
    stage_runs: dict[str, StageRunStatus] = field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None


def summarize(run_id: str, entries: list[dict]) -> RunStatus:
    """Fold the journal into the latest state of the run and of each stage run."""
    status = RunStatus(run_id=run_id)
    for entry in entries:
        if entry["kind"] == "run":
            _apply_run_entry(status, entry)
        elif entry["kind"] == "stage":
            _apply_stage_entry(
                status.stage_runs.setdefault(entry["stage_run"], StageRunStatus(entry["stage_run"])), entry
            )
    return status


def _apply_run_entry(status: RunStatus, entry: dict) -> None:
    status.state = "running" if entry["state"] == STARTED else entry["state"]
    status.reason = entry.get("reason", "")
    if entry["state"] == STARTED:
        status.started_at = entry["ts"]
        for stage_run in entry.get("stage_runs", []):
            status.stage_runs.setdefault(stage_run, StageRunStatus(stage_run))
    else:
        status.ended_at = entry["ts"]


def _apply_stage_entry(stage: StageRunStatus, entry: dict) -> None:
    stage.state = entry["state"]
    stage.reason = entry.get("reason", "")
    if entry["state"] == RUNNING:
        stage.attempts = entry.get("attempt", stage.attempts + 1)
        stage.started_at, stage.ended_at, stage.exit_code = entry["ts"], None, None
        stage.log = entry.get("log")
    elif entry["state"] in (SUCCEEDED, FAILED):
        stage.ended_at = entry["ts"]
        stage.exit_code = entry.get("exit_code")
        stage.duration_s = entry.get("duration_s")
