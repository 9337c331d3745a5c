"""Watch a run from this machine: its journal in the store, and whether its instances still live.

The journal (`runs/<id>/journal.jsonl` and its segments, read by `stored_journal`) is mirrored by
the agent after every transition; its last `run` entry says succeeded, failed or interrupted. The watcher stops at that entry, when every
instance is gone without one (a crash, a spot reclaim, the watchdog), or at the deadline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from campaign.errors import NotInStore, StoreError
from campaign.jsonl import last_record_summary
from campaign.run.journal import (
    FAILED,
    INTERRUPTED,
    RUNNING,
    SUCCEEDED,
    RunStatus,
    read_entries,
    stored_journal,
    summarize,
)
from campaign.run.keys import RunKeys
from campaign.store import Store
from campaign.ui.tables import duration_text

FINAL_STATES = (SUCCEEDED, FAILED, INTERRUPTED)
LOST, DEADLINE = "lost", "deadline"
GONE_INSTANCE_STATES = ("shutting-down", "terminated", "stopping", "stopped")


@dataclass(frozen=True)
class WatchResult:
    state: str  # succeeded, failed, interrupted, lost or deadline
    status: RunStatus
    reason: str = ""


@dataclass
class Progress:
    """One line: state, stage k/n, the current stage run, its last item (query), elapsed time."""

    started: float = field(default_factory=time.monotonic)
    last_line: str = ""

    def line(self, status: RunStatus | None, item: str) -> str:
        elapsed = duration_text(time.monotonic() - self.started)
        if status is None:
            return f"waiting for the instance to start the agent · {elapsed}"
        stages = list(status.stage_runs.values())
        done = sum(1 for s in stages if s.state not in ("pending", RUNNING))
        current = next((s.id for s in stages if s.state == RUNNING), "-")
        query = f" · {item}" if item else ""
        return f"{status.state} · stage {done}/{len(stages)} · {current}{query} · {elapsed}"


class LineDisplay:
    """Prints a line when it changes (logs, CI, a pipe)."""

    def __init__(self, out: Callable[[str], None]):
        self.out = out
        self.previous = ""

    def __enter__(self) -> LineDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def show(self, line: str) -> None:
        key = line.rsplit(" · ", 1)[0]  # the elapsed time alone is no news
        if key != self.previous:
            self.previous = key
            self.out(line)


class LiveDisplay(LineDisplay):
    """A status line rewritten in place on a terminal."""

    def __init__(self, out: Callable[[str], None]):
        super().__init__(out)
        from rich.live import Live  # terminals only: rich's live display costs start-up time elsewhere

        self.live = Live("", transient=True, refresh_per_second=2)

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def show(self, line: str) -> None:
        self.live.update(line)


def make_display(out: Callable[[str], None]) -> LineDisplay:
    return LiveDisplay(out) if sys.stderr.isatty() else LineDisplay(out)


class JournalWatcher:
    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        incremental: dict[str, str] | None = None,
        instances_alive: Callable[[], bool] | None = None,
        lost: str = "every instance of the run is gone",
        known_entries: int = 0,
    ):
        self.store, self.run_id = store, run_id
        self.incremental = incremental or {}  # stage run -> its incremental results key in the store
        self.instances_alive = instances_alive
        self.lost = lost  # what is gone when instances_alive says False
        self.known_entries = known_entries  # a resumed run's journal so far: its final entry is the old agent's

    def poll(self) -> RunStatus | None:
        try:
            data = stored_journal(self.store, RunKeys(self.run_id).journal)
        except NotInStore:
            return None
        entries = read_entries(data)
        return summarize(self.run_id, entries) if len(entries) > self.known_entries else None

    def entries_now(self) -> int:
        """How many entries the stored journal has (0 when there is none yet)."""
        try:
            return len(read_entries(stored_journal(self.store, RunKeys(self.run_id).journal)))
        except NotInStore:
            return 0

    def current_item(self, status: RunStatus | None) -> str:
        running = next((s.id for s in (status.stage_runs.values() if status else ()) if s.state == RUNNING), None)
        key = self.incremental.get(running or "")
        if not key:
            return ""
        try:
            return last_record_summary(self.store.get_bytes(key))
        except StoreError:
            return ""

    def watch(
        self,
        *,
        deadline_s: float,
        interval_s: float,
        display: LineDisplay,
        on_poll_error: Callable[[Exception], None] | None = None,
    ) -> WatchResult:
        started, progress = time.monotonic(), Progress()
        status: RunStatus | None = None
        while True:
            try:
                status = self.poll()
            except StoreError as err:  # a transient outage must not end the watch (nor the run)
                if on_poll_error:
                    on_poll_error(err)
            if status is not None and status.state in FINAL_STATES:
                return WatchResult(status.state, status, status.reason)
            display.show(progress.line(status, self.current_item(status)))
            if self.instances_alive is not None and not self.instances_alive():
                status = self.poll() or status  # the last upload may have landed just now
                if status is not None and status.state in FINAL_STATES:
                    return WatchResult(status.state, status, status.reason)
                return WatchResult(
                    LOST,
                    status or RunStatus(self.run_id, state="created"),
                    f"{self.lost}, but its journal has no final entry",
                )
            if time.monotonic() - started > deadline_s:
                return WatchResult(
                    DEADLINE,
                    status or RunStatus(self.run_id, state="created"),
                    f"no final journal entry within {duration_text(deadline_s)}",
                )
            time.sleep(interval_s)
