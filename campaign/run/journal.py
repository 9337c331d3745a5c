"""The journal: append-only JSON Lines of run and stage-run transitions, mirrored to the store.

It is the source of truth for `status`, `logs` and (later) resume. A torn last line, left by a
crash mid-write, is dropped on read and never parsed as data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign.errors import StoreError
from campaign.faults import crash_point, die, reached
from campaign.jsonl import cut_torn_tail, write_all
from campaign.run.entries import Entry, entry_fields
from campaign.store import Store
from campaign.system.clock import now_iso

# Stage-run states and run states.
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = "pending", "running", "succeeded", "failed", "skipped"
STARTED, INTERRUPTED = "started", "interrupted"
INVALIDATED = "invalidated"  # a succeeded stage run whose outputs failed verification on resume


class Journal:
    """Appends entries to a local file (fsync'd) and mirrors the whole file to the store after each.

    Opening an existing journal (a resume) first cuts a torn last line, so new entries never
    follow half an entry.
    """

    def __init__(self, path: Path, store: Store, key: str):
        self.path, self.store, self.key = path, store, key
        cut_torn_tail(path)
        self.entries = read_entries(path.read_bytes(), str(path)) if path.exists() else []

    def record(self, kind: str, **fields) -> dict:
        entry = {"seq": len(self.entries), "ts": now_iso(), "kind": kind, **fields}
        crash_point("journal.append")
        append_line(self.path, json.dumps(entry, sort_keys=True))
        self.entries.append(entry)
        crash_point("journal.mirror")
        self.mirror()
        return entry

    def append(self, entry: Entry) -> dict[str, Any]:
        """Journal a typed entry (campaign.run.entries owns their fields)."""
        return self.record(entry.kind, **entry_fields(entry))

    def mirror(self) -> None:
        self.store.put_file(self.path, self.key)


def append_line(path: Path, line: str) -> None:
    """Append one line with a single write and fsync, so a crash leaves at most a torn last line."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if reached("journal.torn"):
                os.write(fd, data[: len(data) // 2])
                os.fsync(fd)
                die()
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
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
        problem = _entry_problem(entry)
        if problem:
            raise _damaged(where, index + 1, problem)
        entries.append(entry)
    return entries


def _entry_problem(entry: object) -> str | None:
    """What makes entry unlike any entry campaign writes, or None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
        return "is not a journal entry (an object with kind, state and ts)"
    if not isinstance(entry.get("state"), str) or not isinstance(entry.get("ts"), str):
        return f"is a {entry['kind']!r} entry without its state or ts"
    if entry["kind"] == "stage" and not isinstance(entry.get("stage_run"), str):
        return "is a stage entry without its stage_run"
    artifacts = entry.get("artifacts", [])
    if not isinstance(artifacts, list) or not all(is_artifact_record(a) for a in artifacts):
        return "records artifacts that are not {key, size, sha256}"
    return None


def is_artifact_record(value: object) -> bool:
    """An artifact as campaign records it: {key, size, sha256}."""
    return isinstance(value, dict) and isinstance(value.get("key"), str) and \
        isinstance(value.get("size"), int) and isinstance(value.get("sha256"), str)


def _damaged(where: str, line: int, problem: str) -> StoreError:
    return StoreError(f"{where} is damaged: line {line} {problem}. Campaign wrote none of it; the journal is the "
                      "run's record, so nothing reads past it. Restore the file from the other copy (the store's "
                      "runs/<id>/journal.jsonl or the run folder's journal.jsonl), or start a new run.")


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
            _apply_stage_entry(status.stage_runs.setdefault(entry["stage_run"], StageRunStatus(entry["stage_run"])),
                               entry)
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
