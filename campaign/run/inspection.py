"""The read side: `status`, `logs`, `runs` and `verify`, all from the store (local folder or S3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from campaign.errors import InputError, NotInStore, StoreError
from campaign.planning.plan import Plan
from campaign.run.journal import RunStatus, read_entries, stored_journal, summarize
from campaign.run.keys import RUNS_PREFIX, RunKeys
from campaign.run.lease import STALE_AFTER_S, holder_is_dead_here, read_lease
from campaign.run.manifest import artifacts_of_journal, read_manifest, verify_artifacts
from campaign.run.record import read_record
from campaign.store import Store
from campaign.ui.tables import format_table

DEAD = "dead"


def run_status(store: Store, run_id: str) -> RunStatus:
    """The run's state from its journal; callers have read its run.json (the clear error if absent)."""
    key = RunKeys(run_id).journal
    try:
        data = stored_journal(store, key)
    except NotInStore:
        return RunStatus(run_id=run_id, state="created", reason="no stage has started yet")
    status = summarize(run_id, read_entries(data, store.where(key)))
    if status.state == "running":
        _check_agent_alive(store, status)
    return status


def _check_agent_alive(store: Store, status: RunStatus) -> None:
    """A run whose journal says running but whose agent is gone is dead, not running."""
    held = read_lease(store, status.run_id)
    resume = f"`campaign resume {status.run_id}` continues it"
    if held is None:
        status.state, status.reason = DEAD, f"no agent holds the run (it stopped without closing it); {resume}"
        return
    info, _ = held
    if holder_is_dead_here(info):
        status.state = DEAD
        status.reason = (
            f"its agent (pid {info.pid} on this machine) is gone, last heartbeat {info.heartbeat_at}; {resume}"
        )
    elif info.age_s() > STALE_AFTER_S:
        status.state = DEAD
        status.reason = (
            f"dead since {info.heartbeat_at}: no heartbeat from {info.host} for {info.age_s():.0f}s; "
            f"{resume} (--take-over)"
        )
    else:
        status.reason = f"{info.describe()}"


def status_dict(store: Store, run_id: str) -> dict:
    record = read_record(store, run_id)
    status = run_status(store, run_id)
    return {
        "run": asdict(record),
        "state": status.state,
        "reason": status.reason,
        "started_at": status.started_at,
        "ended_at": status.ended_at,
        "stage_runs": [asdict(s) for s in status.stage_runs.values()],
    }


def format_status(document: dict) -> str:
    run = document["run"]
    lines = [
        f"run {run['run_id']}: {document['state']}" + (f" ({document['reason']})" if document["reason"] else ""),
        f"  campaign {run['campaign']} · selection {run['selection']} · commit {(run['commit'] or '')[:12]}"
        f"{' (dirty)' if run['dirty'] else ''} · target {run['target']} · store {run['store']}",
        "",
    ]
    rows = [("stage run", "state", "attempts", "exit", "seconds", "log / reason")]
    for stage in document["stage_runs"]:
        detail = stage["reason"] if stage["state"] in ("failed", "skipped") and stage["reason"] else stage["log"] or ""
        rows.append(
            (
                stage["id"],
                stage["state"],
                str(stage["attempts"]),
                "" if stage["exit_code"] is None else str(stage["exit_code"]),
                "" if stage["duration_s"] is None else f"{stage['duration_s']:.1f}",
                detail,
            )
        )
    lines += format_table(rows, indent="  ")
    return "\n".join(lines)


def stage_log(store: Store, run_id: str, stage_run: str | None) -> bytes:
    """The log of stage_run's latest attempt; without a stage run, the runner's event log."""
    read_record(store, run_id)
    if stage_run is None:
        return _get(store, RunKeys(run_id).runner_log, "the runner log")
    status = run_status(store, run_id)
    stage = status.stage_runs.get(stage_run)
    if stage is None:
        known = ", ".join(status.stage_runs) or "none yet"
        raise InputError(f"run {run_id} has no stage run '{stage_run}'. Its stage runs: {known}.")
    if not stage.log:
        raise InputError(
            f"{stage_run} of run {run_id} has no log: it is {stage.state}"
            + (f" ({stage.reason})" if stage.reason else "")
            + "."
        )
    return _get(store, RunKeys(run_id).under(stage.log), f"the log of {stage_run}")


def _get(store: Store, key: str, what: str) -> bytes:
    try:
        return store.get_bytes(key)
    except NotInStore:
        raise InputError(
            f"{what} is not in the store yet ({store.where(key)}); logs are uploaded when "
            "each stage run ends. A running stage's log is in the run's local folder."
        ) from None


def list_runs(store: Store) -> list[dict]:
    """Runs in the store, newest first, with id, commit, selection and status."""
    rows = []
    for run_id in sorted(store.list_children(RUNS_PREFIX), reverse=True):
        try:
            record = read_record(store, run_id)
            state = run_status(store, run_id).state
        except InputError:  # a run that died before writing run.json: show it, it may hold data
            rows.append(_unreadable_row(run_id, "no run.json", None))
            continue
        except StoreError as err:  # damaged: say so on its row, list the others
            rows.append(_unreadable_row(run_id, "DAMAGED", str(err)))
            continue
        rows.append(
            {
                "run_id": run_id,
                "created_at": record.created_at,
                "commit": record.commit,
                "selection": record.selection,
                "target": record.target,
                "state": state,
                "problem": None,
            }
        )
    return rows


def _unreadable_row(run_id: str, state: str, problem: str | None) -> dict:
    return {
        "run_id": run_id,
        "created_at": None,
        "commit": None,
        "selection": None,
        "target": None,
        "state": state,
        "problem": problem,
    }


@dataclass(frozen=True)
class Verified:
    artifacts: int
    bytes_hashed: int  # --deep: what was re-read and hashed; 0 otherwise


def verify_run(store: Store, run_id: str, *, deep: bool) -> Verified:
    """Check every artifact of the manifest, and the manifest against the journal; raises StoreError listing
    each mismatch. Shallow trusts the store's recorded checksums; deep re-reads and hashes every object."""
    read_record(store, run_id)
    key = RunKeys(run_id).manifest
    try:
        data = store.get_bytes(key)
    except NotInStore:
        raise StoreError(
            f"run {run_id} has no manifest ({store.where(key)}): "
            "it has not finished. `campaign status` shows where it stopped."
        ) from None
    artifacts = read_manifest(data, store.where(key))
    gaps, mismatches = manifest_gaps(store, run_id, artifacts), verify_artifacts(store, artifacts, deep=deep)
    report = [f"run {run_id}:"] if gaps or mismatches else []
    if gaps:
        report += ["the manifest disagrees with the journal (shortened or edited):", *(f"  {g}" for g in gaps)]
    if mismatches:
        report += [
            f"{len(mismatches)} of {len(artifacts)} artifacts do not match the manifest:",
            *(f"  {m}" for m in mismatches),
        ]
    if report:
        raise StoreError("\n".join(report))
    return Verified(len(artifacts), sum(a.size for a in artifacts) if deep else 0)


def manifest_gaps(store: Store, run_id: str, artifacts: list) -> list[str]:
    """What the journal recorded that the manifest does not list as recorded: a shortened or edited manifest."""
    key = RunKeys(run_id).journal
    try:
        entries = read_entries(store.get_bytes(key), store.where(key))
    except NotInStore:
        return [f"{store.where(key)} is missing, so the manifest cannot be checked against what the run stored"]
    listed = {a.key: a for a in artifacts}
    gaps = [
        f"the journal recorded {store.where(a.key)} ({a.size} bytes, sha256 {a.sha256[:12]}…), but the "
        "manifest " + ("does not list it" if a.key not in listed else "lists other bytes for it")
        for a in artifacts_of_journal(entries)
        if listed.get(a.key) != a
    ]
    closed = [e for e in entries if e["kind"] == "run" and "artifact_count" in e]
    if closed and closed[-1]["artifact_count"] > len(listed):
        gaps.append(
            f"the run ended with {closed[-1]['artifact_count']} artifacts in its manifest; "
            f"{store.where(RunKeys(run_id).manifest)} now lists {len(listed)}"
        )
    return gaps


def find_unfinished(store: Store, plan: Plan, *, target: str, warn: Callable[[str], None]) -> str | None:
    """The newest run in store of the same commit, campaign file, selection and target that did not succeed.
    A damaged run is passed over (warn says which and why): it cannot be resumed, and must not stop a new run."""
    for run_id in sorted(store.list_children(RUNS_PREFIX), reverse=True):
        try:
            record = read_record(store, run_id)
        except InputError:
            continue  # no run.json: nothing to resume from
        except StoreError as err:
            warn(f"passing over run {run_id}: {err}")
            continue
        same = (record.commit, record.campaign_digest, record.selection, record.target, record.dirty) == (
            plan.commit,
            plan.spec.digest,
            plan.selection_text,
            target,
            False,
        )
        if same and _unfinished(store, run_id, warn):
            return run_id
    return None


def _unfinished(store: Store, run_id: str, warn: Callable[[str], None]) -> bool:
    try:
        return run_status(store, run_id).state != "succeeded"
    except StoreError as err:
        warn(f"passing over run {run_id}: {err}")
        return False
