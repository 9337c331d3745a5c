"""The JSON-Lines contract, for campaign and for stage scripts (`from campaign.jsonl import …`).

A results file grows one record per line, each appended with a single write and an fsync, so a
crash leaves at most a torn last line. Whoever continues the file (a resumed stage, the journal)
first cuts that torn line; whoever reads a growing file trusts only its complete lines. A resumed
stage skips the items already recorded (`read_records`) and appends the rest (`append_record`).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

# The result record contract's fields that name an item (README: "The result record"); a record's
# one-line summary (the progress display, the AWS watcher) shows those it has, in this order.
ITEM_FIELDS = ("item", "query", "engine", "side", "iteration")


def write_all(fd: int, data: bytes) -> None:
    """Write data to fd completely; after a short write, writing the rest makes the kernel say why."""
    pending = memoryview(data)
    while pending:
        written = os.write(fd, pending)
        if not written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        pending = pending[written:]


def append_record(handle: BinaryIO, record: dict[str, Any]) -> None:
    """Append one record as one line to an unbuffered binary handle, then fsync it (OSError on failure)."""
    write_all(handle.fileno(), (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    os.fsync(handle.fileno())


def complete_lines_of(data: bytes) -> bytes:
    """data up to its last newline: what a reader may trust while a writer appends."""
    return data[: data.rfind(b"\n") + 1]


def cut_torn_tail(path: Path) -> int:
    """Truncate path after its last newline (a crash mid-append); returns the bytes cut."""
    try:
        handle = os.fdopen(os.open(path, os.O_RDWR | os.O_NOFOLLOW), "rb+")  # never truncate through a link
    except FileNotFoundError:
        return 0
    with handle:
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())  # before anything is appended after the cut
        return len(data) - keep


def read_records(path: Path) -> list[dict[str, Any]]:
    """The complete records of path (none when it does not exist); call cut_torn_tail first to continue it."""
    try:
        data = complete_lines_of(path.read_bytes())
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def last_record_summary(data: bytes) -> str:
    """A few words naming the last complete record (its item fields); '' if there is none."""
    for line in reversed(data.split(b"\n")[:-1]):  # after the last newline: maybe half-written
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return " ".join(str(record[name]) for name in ITEM_FIELDS if name in record)
    return ""
