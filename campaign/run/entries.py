"""Journal entries, typed: the one owner of their fields. `Journal.append(entry)` writes them;
`entry_problem` says what is wrong with a stored one's shape, and `parse_entry` reads it back typed."""

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
    checkout_outputs: list[str] | None = None  # a build's products in the checkout, which a resume checks
    cached: str | None = None  # `cache: true`: the key of the cache entry its outputs were fetched from
    cache_stored: str | None = None  # `cache: true`: the key its outputs were stored under after generating
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. build_source, prebuilt, checkout_outputs
    kind: str = STAGE

    def fields_to_write(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None and k not in ("notes", "kind")}
        data.update(self.notes)
        return data


Entry = RunEntry | StageEntry


def stage_entries(entries: list[dict[str, Any]]) -> list[StageEntry]:
    """The stage entries of a journal (read and checked by read_entries), typed, in order."""
    return [entry for entry in map(parse_entry, entries) if isinstance(entry, StageEntry)]


def entry_fields(entry: Entry) -> dict[str, Any]:
    """The fields journaled for entry (besides seq, ts and kind); None values are left out."""
    if isinstance(entry, StageEntry):
        return entry.fields_to_write()
    return {k: v for k, v in asdict(entry).items() if v is not None and k != "kind"}


def entry_problem(entry: object) -> str | None:
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
    return (
        isinstance(value, dict)
        and isinstance(value.get("key"), str)
        and isinstance(value.get("size"), int)
        and isinstance(value.get("sha256"), str)
    )


def parse_entry(document: dict[str, Any]) -> Entry:
    """A stored entry back as a typed one; ValueError names what is wrong with its shape."""
    problem = entry_problem(document)
    if problem:
        raise ValueError(f"journal entry {document.get('seq', '?')} {problem}")
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
