"""The runner's own event log: structlog, JSON lines to a file, readable lines on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import structlog
from structlog.typing import EventDict, Processor


class _JsonLinesTee:
    """A processor that appends each event as one JSON line to a file, then passes it on."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", buffering=1, encoding="utf-8")

    def __call__(self, logger: object, method_name: str, event_dict: EventDict) -> EventDict:
        self.handle.write(json.dumps(event_dict, default=str, sort_keys=True) + "\n")
        return event_dict


def configure_events(json_path: Path, *, quiet: bool = False) -> structlog.typing.FilteringBoundLogger:
    """Log to json_path (always) and to stderr (unless quiet); returns the runner's logger."""
    processors: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _JsonLinesTee(json_path),
    ]
    if quiet:
        processors.append(_drop)
    else:
        processors += [_for_people, structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=processors, logger_factory=lambda *args: _CurrentStderr(), cache_logger_on_first_use=False
    )
    return structlog.get_logger("campaign")


class _CurrentStderr:
    """Writes to whatever sys.stderr is now: the progress display redirects it to print above itself."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = error = critical = exception = log = msg


def _for_people(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    """On the console: the time of day only, and no empty fields (the JSON file keeps everything)."""
    shown = {key: value for key, value in event_dict.items() if value is not None}
    shown["timestamp"] = str(event_dict.get("timestamp", ""))[11:19]
    return shown


def _drop(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    raise structlog.DropEvent
