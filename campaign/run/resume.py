"""What a resumed run can trust: stage runs whose recorded outputs still verify.

A stage run is "done, verified" when its last attempt succeeded and every artifact recorded with
that attempt matches the store (size and SHA-256), every local-only output (upload: false)
still has the size and modification time recorded, and a build's output is still in the checkout
(on a new machine it is not). Anything else is run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign.run.entries import StageEntry, stage_entries
from campaign.run.journal import RUNNING, SUCCEEDED
from campaign.store import Artifact, Store


@dataclass(frozen=True)
class PastRun:
    """What the journal says about one stage run before this session."""

    state: str
    attempts: int
    entry: StageEntry  # its latest entry


def past_runs(entries: list[dict[str, Any]]) -> dict[str, PastRun]:
    latest: dict[str, StageEntry] = {}
    attempts: dict[str, int] = {}
    for entry in stage_entries(entries):
        latest[entry.stage_run] = entry
        attempts[entry.stage_run] = max(attempts.get(entry.stage_run, 0), entry.attempt or 0)
    return {run_id: PastRun(entry.state, attempts[run_id], entry) for run_id, entry in latest.items()}


def verify_done(past: PastRun, store: Store, outputs_dir: Path, checkout: Path) -> str | None:
    """None when a succeeded stage run's outputs still verify, else why not (one sentence)."""
    for recorded in past.entry.artifacts or []:
        problem = store.verify(Artifact(**recorded))
        if problem:
            return f"recorded output failed verification: {problem}"
    for recorded in past.entry.local_outputs or []:
        problem = local_problem(recorded, outputs_dir)
        if problem:
            return f"local output failed verification: {problem}"
    missing = [path for path in past.entry.checkout_outputs or [] if not (checkout / path).exists()]
    if missing:
        return f"its build_output {', '.join(missing)} is not in this machine's checkout {checkout}"
    return None


def decide(
    past: dict[str, PastRun], store: Store, outputs_dir: Path, checkout: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """(done: stage run -> why it is trusted, redo: stage run -> why a succeeded run is re-run)."""
    done, redo = {}, {}
    for run_id, run in past.items():
        if run.state != SUCCEEDED:
            continue
        problem = verify_done(run, store, outputs_dir, checkout)
        if problem:
            redo[run_id] = problem
        else:
            entry = run.entry
            count = sum(
                len(recorded or []) for recorded in (entry.artifacts, entry.local_outputs, entry.checkout_outputs)
            )
            done[run_id] = f"done, verified ({count} recorded outputs and logs match)"
    return done, redo


def local_fingerprint(path: Path, outputs_dir: Path) -> dict:
    """Size and modification time of a local-only output (upload: false).

    Not SHA-256: such outputs are regenerable data that never leave the machine (hundreds of MB of
    parquet), and hashing them on every run would cost more than the harness's 2 % budget. Any
    rewrite or replacement changes the fingerprint; a damaged data file fails answer validation.
    """
    stat = path.stat()
    return {"path": path.relative_to(outputs_dir).as_posix(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def local_problem(recorded: dict, outputs_dir: Path) -> str | None:
    path = outputs_dir / recorded["path"]
    if not path.is_file():
        return f"{path} is missing"
    found = local_fingerprint(path, outputs_dir)
    if (found["size"], found["mtime_ns"]) != (recorded["size"], recorded["mtime_ns"]):
        return f"{path} changed since it was produced (size or modification time differs)"
    return None


def in_flight(past: dict[str, PastRun]) -> list[PastRun]:
    """Stage runs whose last entry says running: the agent died (or was killed) during them."""
    return [run for run in past.values() if run.state == RUNNING]
