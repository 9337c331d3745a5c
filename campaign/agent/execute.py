"""Executing a recorded run on this machine: hold the lease, restore the journal, trust what still
verifies, and run the rest. `campaign run` (local), `campaign resume` and `campaign agent` (what an
instance's userdata starts) all come here.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from campaign.agent.scheduler import Scheduler
from campaign.errors import PreflightRefused, StoreError
from campaign.planning.graph import expand
from campaign.planning.plan import Plan, build_plan
from campaign.run.dirs import RunDir
from campaign.run.journal import Journal, read_entries, restore_journal, stored_journal
from campaign.run.keys import RUNNER_LOG, RunKeys
from campaign.run.lease import Lease
from campaign.run.record import RunRecord, read_record
from campaign.run.resume import decide, past_runs
from campaign.spec.load import load_campaign
from campaign.spec.selection import parse_selection
from campaign.spec.variables import with_vars
from campaign.store import Store, open_store
from campaign.system.git import git, has_commit
from campaign.system.host import fingerprint, read_host
from campaign.system.process import reap_orphans
from campaign.system.signals import sigterm_as_interrupt
from campaign.ui.events import configure_events
from campaign.ui.progress import make_progress


def plan_for_record(
    record: RunRecord, checkout: Path, *, done: dict[str, str] | None = None, redo: dict[str, str] | None = None
) -> Plan:
    """The plan of a run, rebuilt from the checkout's own campaign file (the committed one), with the vars
    recorded in run.json (the command line's --var applied when the run was made)."""
    spec = load_campaign(checkout / record.campaign_file)
    if spec.digest != record.campaign_digest:
        raise PreflightRefused(
            f"{checkout / record.campaign_file} differs from the campaign file run {record.run_id} was planned "
            f"with (sha256 {record.campaign_digest[:12]}…): the checkout is not commit {record.commit}. "
            f"Clone that commit (git checkout {record.commit}) and start the agent there."
        )
    spec = with_vars(spec, {name: value for name, value in record.vars.items() if name in spec.vars})
    selection = parse_selection(record.selection, spec)
    return build_plan(
        spec,
        selection,
        expand(spec, selection),
        target=record.target,
        commit=record.commit,
        host=read_host(),
        verdicts=[],
        done=done or {},
        redo=redo or {},
    )


def resume_preview(record: RunRecord, store: Store, run_dir: RunDir) -> Plan:
    """What resuming would do, without doing it (no lease taken, nothing written)."""
    if run_dir.journal.exists():
        entries = read_entries(run_dir.journal.read_bytes(), str(run_dir.journal))
    else:
        key = RunKeys(record.run_id).journal
        entries = read_entries(stored_journal(store, key), store.where(key))
    done, redo = decide(past_runs(entries), store, run_dir.outputs, run_dir.checkout)
    return plan_for_record(record, run_dir.checkout, done=done, redo=redo)


def execute_record(record: RunRecord, store: Store, run_dir: RunDir, *, take_over: bool) -> None:
    """Hold the lease for the whole execution; release it also when the run fails or is interrupted."""
    lease = Lease(store, record.run_id)
    lease.acquire(take_over=take_over)
    lease.start_heartbeats()
    try:
        _execute_held(record, store, run_dir, lease)
    except BaseException as err:
        try:
            lease.release()
        except StoreError as also:
            err.add_note(f"The run's lease could not be released either: {also}")
        raise
    lease.release()
    if record.sides:
        from campaign.results.command import store_ab_comparison  # numpy, scipy, plotly: only for `ab` runs

        store_ab_comparison(store, record.run_id)


def _execute_held(record: RunRecord, store: Store, run_dir: RunDir, lease: Lease) -> None:
    stopped = reap_orphans(record.run_id)  # first: a dead agent's stage must not write while we look
    key = RunKeys(record.run_id).journal
    restore_journal(store, key, run_dir.journal)  # a new machine continues from the store's copy
    journal = Journal(run_dir.journal, store, key)
    record = _with_this_host(record, store)
    _ensure_side_checkouts(record, run_dir)
    past = past_runs(journal.entries)
    done, redo = decide(past, store, run_dir.outputs, run_dir.checkout)
    plan = plan_for_record(record, run_dir.checkout, done=done, redo=redo)
    log = configure_events(run_dir.logs / RUNNER_LOG)
    with make_progress() as progress, sigterm_as_interrupt():
        Scheduler(
            record,
            plan,
            store=store,
            run_dir=run_dir,
            journal=journal,
            past=past,
            lease=lease,
            log=log,
            progress=progress,
            stopped_leftovers=stopped,
        ).execute()


def _with_this_host(record: RunRecord, store: Store) -> RunRecord:
    """The record with the fingerprint of the machine executing it (an instance, a replacement), stored."""
    host = fingerprint()
    if record.host == host:
        return record
    record = replace(record, host=host)
    store.put_bytes(record.to_bytes(), record.keys.record)
    return record


def _ensure_side_checkouts(record: RunRecord, run_dir: RunDir) -> None:
    """`campaign ab`: a checkout of each side's commit beside the run's own (kept for a resume): a git worktree
    of the run's checkout, so it shares its objects; on an instance (a shallow clone) the commit is fetched first."""
    for name, commit in record.sides.items():
        if run_dir.side(name).exists():
            continue
        partial = run_dir.side(name).with_name(f".{name}.partial")  # a checkout cut short by a crash is redone
        shutil.rmtree(partial, ignore_errors=True)
        git(run_dir.checkout, "worktree", "prune")
        if not has_commit(run_dir.checkout, commit):
            git(run_dir.checkout, "fetch", "-q", "--depth", "1", "origin", commit)
        git(run_dir.checkout, "worktree", "add", "-q", "--detach", str(partial), commit)
        git(run_dir.checkout, "worktree", "move", str(partial), str(run_dir.side(name)))


def run_agent(run_id: str, store_url: str, *, checkout: Path, state_dir: Path, take_over: bool = False) -> None:
    """`campaign agent`: what userdata starts on an instance, in the clone it made of the run's commit.

    Started again for a run that already has a journal (a replaced instance), it resumes it.
    """
    store = open_store(store_url)
    record = read_record(store, run_id)
    execute_record(record, store, RunDir.of(state_dir, run_id, checkout.resolve()), take_over=take_over)
