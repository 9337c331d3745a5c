"""The read side: `status`, `logs`, `runs` and `verify`, all from the store (local folder or S3)."""

from __future__ import annotations

from dataclasses import asdict

from campaign.errors import InputError, NotInStore, StoreError
from campaign.run.journal import RunStatus, read_entries, stored_journal, summarize
from campaign.run.lease import STALE_AFTER_S, holder_is_dead_here, read_lease
from campaign.run.manifest import read_manifest, verify_artifacts
from campaign.run.record import RUNS_PREFIX, read_record, run_key
from campaign.store import Store
from campaign.ui.tables import format_table

DEAD = "dead"


def run_status(store: Store, run_id: str) -> RunStatus:
    """The run's state from its journal; callers have read its run.json (the clear error if absent)."""
    try:
        data = stored_journal(store, run_key(run_id, "journal.jsonl"))
    except NotInStore:
        return RunStatus(run_id=run_id, state="created", reason="no stage has started yet")
    status = summarize(run_id, read_entries(data))
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
        status.reason = f"its agent (pid {info.pid} on this machine) is gone, last heartbeat {info.heartbeat_at}; {resume}"
    elif info.age_s() > STALE_AFTER_S:
        status.state = DEAD
        status.reason = f"dead since {info.heartbeat_at}: no heartbeat from {info.host} for {info.age_s():.0f}s; " \
                        f"{resume} (--take-over)"
    else:
        status.reason = f"{info.describe()}"


def status_dict(store: Store, run_id: str) -> dict:
    record = read_record(store, run_id)
    status = run_status(store, run_id)
    return {"run": asdict(record), "state": status.state, "reason": status.reason,
            "started_at": status.started_at, "ended_at": status.ended_at,
            "stage_runs": [asdict(s) for s in status.stage_runs.values()]}


def format_status(document: dict) -> str:
    run = document["run"]
    lines = [f"run {run['run_id']}: {document['state']}" + (f" ({document['reason']})" if document["reason"] else ""),
             f"  campaign {run['campaign']} · selection {run['selection']} · commit {(run['commit'] or '')[:12]}"
             f"{' (dirty)' if run['dirty'] else ''} · target {run['target']} · store {run['store']}", ""]
    rows = [("stage run", "state", "attempts", "exit", "seconds", "log / reason")]
    for stage in document["stage_runs"]:
        detail = stage["reason"] if stage["state"] in ("failed", "skipped") and stage["reason"] else stage["log"] or ""
        rows.append((stage["id"], stage["state"], str(stage["attempts"]),
                     "" if stage["exit_code"] is None else str(stage["exit_code"]),
                     "" if stage["duration_s"] is None else f"{stage['duration_s']:.1f}", detail))
    lines += format_table(rows, indent="  ")
    return "\n".join(lines)


def stage_log(store: Store, run_id: str, stage_run: str | None) -> bytes:
    """The log of stage_run's latest attempt; without a stage run, the runner's event log."""
    read_record(store, run_id)
    if stage_run is None:
        return _get(store, run_key(run_id, "logs", "runner.jsonl"), "the runner log")
    status = run_status(store, run_id)
    stage = status.stage_runs.get(stage_run)
    if stage is None:
        known = ", ".join(status.stage_runs) or "none yet"
        raise InputError(f"run {run_id} has no stage run '{stage_run}'. Its stage runs: {known}.")
    if not stage.log:
        raise InputError(f"{stage_run} of run {run_id} has no log: it is {stage.state}"
                         + (f" ({stage.reason})" if stage.reason else "") + ".")
    return _get(store, run_key(run_id, stage.log), f"the log of {stage_run}")


def _get(store: Store, key: str, what: str) -> bytes:
    try:
        return store.get_bytes(key)
    except NotInStore:
        raise InputError(f"{what} is not in the store yet ({store.where(key)}); logs are uploaded when "
                         "each stage run ends. A running stage's log is in the run's local folder.") from None


def list_runs(store: Store) -> list[dict]:
    """Runs in the store, newest first, with id, commit, selection and status."""
    rows = []
    for run_id in sorted(store.list_children(RUNS_PREFIX), reverse=True):
        try:
            record = read_record(store, run_id)
        except InputError:  # a run that died before writing run.json: show it, it may hold data
            rows.append({"run_id": run_id, "created_at": None, "commit": None, "selection": None,
                         "target": None, "state": "no run.json"})
            continue
        status = run_status(store, run_id)
        rows.append({"run_id": run_id, "created_at": record.created_at, "commit": record.commit,
                     "selection": record.selection, "target": record.target, "state": status.state})
    return rows


def verify_run(store: Store, run_id: str, *, deep: bool) -> int:
    """Check every artifact of the manifest; returns the count checked, raises StoreError listing mismatches."""
    read_record(store, run_id)
    try:
        artifacts = read_manifest(store.get_bytes(run_key(run_id, "manifest.json")))
    except NotInStore:
        raise StoreError(f"run {run_id} has no manifest ({store.where(run_key(run_id, 'manifest.json'))}): "
                         "it has not finished. `campaign status` shows where it stopped.") from None
    problems = verify_artifacts(store, artifacts, deep=deep)
    if problems:
        raise StoreError(f"run {run_id}: {len(problems)} of {len(artifacts)} artifacts do not match the manifest:\n"
                         + "\n".join(f"  {p}" for p in problems))
    return len(artifacts)
