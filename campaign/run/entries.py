"""Journal entries, typed: the one owner of their fields. `Journal.append(entry)` writes them;
`parse_entry` reads a stored line back, refusing a wrong shape with the field named."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

RUN, STAGE = "run", "stage"


@dataclass(frozen=True)
class RunEntry:
    """The run started, resumed or ended."""

    state: str
    reason: str = ""
    run_id: str | None = None
    resumed: bool | None = None
    stage_runs: list[str] | None = None
    artifact_count: int | None = None
    kind: str = RUN


@dataclass(frozen=True)
class StageEntry:
    """A stage run changed state: running, succeeded, failed, skipped, interrupted or invalidated."""

    stage_run: str
    state: str
    attempt: int | None = None
    log: str | None = None
    reason: str = ""
    exit_code: int | None = None
    started_at: str | None = None
    duration_s: float | None = None
    timed_out: bool | None = None
    resumed_records: int | None = None
    artifacts: list[dict[str, Any]] | None = None  # Artifact.to_dict() of everything the attempt stored
    local_outputs: list[dict[str, Any]] | None = None  # fingerprints of outputs kept only here
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. build_source, prebuilt, checkout_outputs
    kind: str = STAGE

    def fields_to_write(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None and k not in ("notes", "kind")}
        data.update(self.notes)
        return data


Entry = RunEntry | StageEntry


def entry_fields(entry: Entry) -> dict[str, Any]:
    """The fields journaled for entry (besides seq, ts and kind); None values are left out."""
    if isinstance(entry, StageEntry):
        return entry.fields_to_write()
    return {k: v for k, v in asdict(entry).items() if v is not None and k != "kind"}


def parse_entry(document: dict[str, Any]) -> Entry:
    """A stored entry back as a typed one; ValueError names what is wrong with its shape."""
    kind = document.get("kind")
    cls: type[RunEntry] | type[StageEntry]
    if kind == RUN:
        cls = RunEntry
    elif kind == STAGE:
        cls = StageEntry
    else:
        raise ValueError(f"journal entry {document.get('seq', '?')} has an unknown kind {kind!r}")
    known = {f.name for f in fields(cls)} - {"notes", "kind"}
    required = {"state"} | ({"stage_run"} if cls is StageEntry else set())
    missing = sorted(required - document.keys())
    if missing:
        raise ValueError(f"journal entry {document.get('seq', '?')} lacks {', '.join(missing)}")
    values = {k: v for k, v in document.items() if k in known}
    if cls is StageEntry:
        values["notes"] = {k: v for k, v in document.items() if k not in known | {"seq", "ts", "kind"}}
    return cls(**values)
