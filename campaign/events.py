"""The runner's own event log: structlog, JSON lines to a file, readable lines on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import structlog


class _JsonLinesTee:
    """A processor that appends each event as one JSON line to a file, then passes it on."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", buffering=1, encoding="utf-8")

    def __call__(self, logger, method_name, event_dict):
        self.handle.write(json.dumps(event_dict, default=str, sort_keys=True) + "\n")
        return event_dict


def configure_events(json_path: Path, *, quiet: bool = False) -> structlog.typing.FilteringBoundLogger:
    """Log to json_path (always) and to stderr (unless quiet); returns the runner's logger."""
    processors = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _JsonLinesTee(json_path),
    ]
    if quiet:
        processors.append(_drop)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(processors=processors, logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        cache_logger_on_first_use=False)
    return structlog.get_logger("campaign")


def _drop(logger, method_name, event_dict):
    raise structlog.DropEvent
