"""Progress on a terminal: stage k of n, and the current item of an incremental stage.

The current item is read from the last complete line of the stage's incremental results file,
so any stage that follows the JSON-Lines contract shows its progress without extra wiring.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign.jsonl import last_record_summary

if TYPE_CHECKING:
    from rich.progress import TaskID


class NoProgress:
    """Used when stderr is not a terminal (CI, logs piped to a file): the event log says it all."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def stage_started(self, index: int, total: int, stage_run: str, incremental: Path | None) -> None:
        pass

    def stage_ended(self) -> None:
        pass


class TerminalProgress(NoProgress):
    def __init__(self) -> None:
        # Imported here, for terminals only: rich's live display costs ~40 ms of every start-up otherwise.
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} stage runs"),
            TimeElapsedColumn(),
            transient=True,
        )
        self.task: TaskID | None = None
        self.running = False  # between stage_started and stage_ended: only then does an end advance the bar
        self.watch: threading.Event | None = None

    def __enter__(self) -> TerminalProgress:
        self.display.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stage_ended()
        self.display.__exit__(*exc)

    def stage_started(self, index: int, total: int, stage_run: str, incremental: Path | None) -> None:
        if self.task is None:
            self.task = self.display.add_task(stage_run, total=total)
        self.display.update(self.task, completed=index - 1, description=f"{stage_run}")
        self.running = True
        if incremental is not None:
            self.watch = threading.Event()
            threading.Thread(target=self._follow, args=(stage_run, incremental, self.watch), daemon=True).start()

    def stage_ended(self) -> None:
        if self.watch:
            self.watch.set()
            self.watch = None
        if self.task is not None and self.running:
            self.display.advance(self.task)
        self.running = False

    def _follow(self, stage_run: str, path: Path, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            item = last_item(path)
            if item and self.task is not None:
                self.display.update(self.task, description=f"{stage_run} · {item}")


def last_item(path: Path) -> str:
    """A short description of the last complete record of a JSON-Lines file ('' if none)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            return last_record_summary(handle.read())
    except OSError:
        return ""


def make_progress() -> NoProgress:
    return TerminalProgress() if sys.stderr.isatty() else NoProgress()
