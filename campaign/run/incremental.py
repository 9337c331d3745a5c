"""Incremental results: the JSON-Lines file a stage grows one record at a time.

The contract with any stage that declares `incremental:` (see the README):
- the runner passes the file's path in CAMPAIGN_INCREMENTAL;
- when the file already holds records (a resume or a retry), the runner has cut any torn last
  line and sets CAMPAIGN_RESUME=1: the stage appends, skipping the items already recorded;
- while the stage runs, the complete lines are uploaded (verified) every few seconds, so a machine
  that dies at Q12 leaves Q1..Q11 in the store.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from campaign.errors import NotInStore, StoreError
from campaign.faults import crash_point
from campaign.jsonl import complete_lines_of, cut_torn_tail
from campaign.store import Store
from campaign.system.links import drop_link


def complete_lines(path: Path) -> bytes:
    """The file's bytes up to its last newline (what a reader may trust while a writer appends).

    A symlink is never read through (empty): its target's bytes are not the stage's results.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return b""
    except OSError as err:
        if err.errno == errno.ELOOP:
            return b""
        raise
    with os.fdopen(descriptor, "rb") as file:
        return complete_lines_of(file.read())


def prepare_for_resume(path: Path, store: Store, key: str) -> int:
    """Make path hold every complete record known (local or stored); returns how many.

    The local file wins when it has at least as many bytes as the stored copy (it is written first);
    the stored copy is used on a new machine or when the local one is shorter. A torn last line is cut.
    A symlink in its place is removed first (never its target): nothing is truncated or appended through it.
    """
    drop_link(path)
    cut_torn_tail(path)
    local = complete_lines(path)
    try:
        stored = complete_lines_of(store.get_bytes(key))
    except NotInStore:
        stored = b""
    if len(stored) > len(local) and stored.startswith(local):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stored)
        local = stored
    return local.count(b"\n")


class IncrementalSync:
    """Uploads the complete lines of a growing file every interval_s, from a daemon thread."""

    def __init__(self, path: Path, store: Store, key: str, *, interval_s: float):
        self.path, self.store, self.key, self.interval_s = path, store, key, interval_s
        self.synced = 0  # bytes of complete lines already in the store
        self.error: StoreError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="incremental-sync", daemon=True)

    def __enter__(self) -> IncrementalSync:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sync_once(self) -> None:
        data = complete_lines(self.path)
        if len(data) <= self.synced:
            return
        crash_point("sync")
        try:
            # Not durable: the stage's own file holds these lines, and its final upload (durable) decides.
            self.store.put_bytes(data, self.key, durable=False)
        except StoreError as error:
            self.error = error  # retried at the next tick; the stage's final upload is the verdict
            return
        self.synced, self.error = len(data), None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sync_once()
