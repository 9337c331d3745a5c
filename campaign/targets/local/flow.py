"""The one place that joins planning (pure) and execution (I/O): `plan` and `run` commands."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import InputError, PreflightRefused, StoreError
from campaign.system.git import find_root, head_commit
from campaign.planning.graph import expand
from campaign.system.host import HostFacts, read_host
from campaign.run.journal import now_iso
from campaign.preflight.overlap import overlap_verdict
from campaign.planning.plan import Plan, build_plan, with_build_source
from campaign.preflight.smoke import Verdict, smoke_gate
from campaign.spec.selection import parse_selection
from campaign.spec.model import load_campaign

STATE_DIR_NAME = ".campaign"


@dataclass(frozen=True)
class RunOptions:
    campaign_file: Path
    selection: str | None = None
    store: str | None = None
    keep_going: bool = False
    allow_dirty: bool = False
    state_dir: Path | None = None
    resume: bool = False
    take_over: bool = False
    sync_interval_s: float = 2.0


def state_dir_for(repo_root: Path, explicit: Path | None = None) -> Path:
    """Where runs keep their local folders: --state-dir, $CAMPAIGN_HOME, or <repo>/.campaign."""
    return explicit or Path(os.environ.get("CAMPAIGN_HOME") or repo_root / STATE_DIR_NAME)


def default_store(repo_root: Path) -> str:
    return os.environ.get("CAMPAIGN_STORE") or str(state_dir_for(repo_root) / "store")


def make_plan(campaign_file: Path, selection_text: str | None, *, allow_dirty: bool,
              target: str = "local") -> tuple[Plan, Path]:
    """Load, validate, expand and preflight; returns the plan and the repository root."""
    spec = load_campaign(campaign_file.resolve())
    root = find_root(spec.path.parent)
    selection = parse_selection(selection_text or spec.default_selection, spec)
    runs = expand(spec, selection)
    host = read_host()
    verdicts = [smoke_gate(spec, runs, root, allow_dirty=allow_dirty), _host_verdict(host, runs),
                overlap_verdict(spec, runs, target)]
    plan = build_plan(spec, selection, runs, target=target, commit=head_commit(root), host=host, verdicts=verdicts)
    return plan, root


def add_build_source(plan: Plan, store_url: str) -> Plan:
    """Say in the plan whether the build stage will fetch the commit's prebuilt from store_url or compile."""
    if plan.spec.build_stage is None:
        return plan  # no store is opened: a plan without a build stays fast
    import campaign.prebuilt.artifact as prebuilt
    from campaign.store import open_store

    found = prebuilt.lookup(open_store(store_url), plan.spec, plan.commit, dirty=plan.dirty)
    return with_build_source(plan, found, store_url)


def _host_verdict(host: HostFacts, runs) -> Verdict:
    wanted = sorted({flag for run in runs for flag in run.stage.requires.cpu_flags})
    missing = host.missing_flags(tuple(wanted))
    summary = f"{host.cores} cores, {host.cpu_model}"
    if wanted:
        summary += f"; required CPU flags present: {', '.join(f for f in wanted if f not in missing) or 'none'}"
    if missing:
        summary += f"; missing: {', '.join(missing)} (stages that need them are skipped)"
    return Verdict("host", True, summary)


def refusal_message(plan: Plan) -> str:
    lines = ["preflight refused the run; nothing was started:"]
    for verdict in plan.refusals:
        lines.append(f"  {verdict.check}: {verdict.summary}")
        lines += [f"    {detail}" for detail in verdict.details]
    return "\n".join(lines)


def run_campaign(options: RunOptions, *, out=print) -> str:
    """Plan, refuse or run locally; returns the run id. Raises the error that decides the exit code."""
    from campaign.run.record import RunDir, RunRecord, new_run_id, run_key
    from campaign.store import open_store
    from campaign.targets.local.checkout import prepare_checkout

    plan, root = make_plan(options.campaign_file, options.selection, allow_dirty=options.allow_dirty)
    if plan.refusals:
        raise PreflightRefused(refusal_message(plan))
    store_url = options.store or default_store(root)
    store = open_store(store_url)
    if options.resume:
        unfinished = find_unfinished(store, plan)
        if unfinished:
            return resume_campaign(unfinished, store_url=store_url, state_dir=options.state_dir,
                                   take_over=options.take_over, out=out)
        print("--resume: no unfinished run of this commit, campaign file and selection; starting a new run.",
              file=sys.stderr)
    run_id = new_run_id(plan.commit)
    out(f"run: {run_id}")
    if plan.dirty:
        _warn_dirty(plan)
    store.probe()
    run_dir = RunDir(state_dir_for(root, options.state_dir) / "runs" / run_id)
    record = RunRecord(
        run_id=run_id, campaign=plan.spec.name, campaign_file=plan.spec.path.relative_to(root).as_posix(),
        campaign_digest=plan.spec.digest, commit=plan.commit, dirty=plan.dirty, selection=plan.selection_text,
        target="local", store=store_url, created_at=now_iso(), keep_going=options.keep_going,
        sync_interval_s=options.sync_interval_s,
    )
    prepare_checkout(root, plan.commit, run_dir.checkout, dirty=plan.dirty)
    store.put_bytes(record.to_bytes(), run_key(run_id, "run.json"))
    execute_record(record, store, run_dir, take_over=False)
    _say_where_results_are(out, store, run_id, run_dir)
    return run_id


def resume_campaign(run_id: str, *, store_url: str | None, state_dir: Path | None, take_over: bool,
                    out=print) -> str:
    """`campaign resume RUN`: continue a local run where it stopped."""
    record, store, run_dir = _resumable(run_id, store_url, state_dir)
    out(f"run: {run_id}")
    print(f"resuming run {run_id} (selection {record.selection}, commit {(record.commit or '')[:12]})",
          file=sys.stderr)
    _ensure_checkout(record, run_dir)
    execute_record(record, store, run_dir, take_over=take_over)
    _say_where_results_are(out, store, run_id, run_dir)
    return run_id


def _say_where_results_are(out, store, run_id: str, run_dir) -> None:
    from campaign.run.record import run_key

    out(f"results: {store.where(run_key(run_id, 'outputs'))}")
    out(f"local copy: {run_dir.outputs}")


def resume_plan(run_id: str, *, store_url: str | None, state_dir: Path | None) -> Plan:
    """What `campaign resume RUN` would do, without doing it (no lease taken, nothing written)."""
    from campaign.agent.agent import plan_for_record
    from campaign.run.journal import read_entries, stored_journal
    from campaign.run.resume import decide, past_runs
    from campaign.run.record import run_key

    record, store, run_dir = _resumable(run_id, store_url, state_dir)
    if run_dir.journal.exists():
        entries = read_entries(run_dir.journal.read_bytes())
    else:
        entries = read_entries(stored_journal(store, run_key(run_id, "journal.jsonl")))
    done, redo = decide(past_runs(entries), store, run_dir.outputs, run_dir.checkout)
    checkout = run_dir.checkout if run_dir.checkout.exists() else None
    if checkout is None:
        raise InputError(f"run {run_id} has no local checkout at {run_dir.checkout}; `campaign resume {run_id}` "
                         "recreates it, then shows the same plan as it runs.")
    return plan_for_record(record, checkout, done=done, redo=redo)


def find_unfinished(store, plan: Plan) -> str | None:
    """The newest run in store of the same commit, campaign file and selection that did not succeed."""
    from campaign.run.inspection import run_status
    from campaign.run.record import RUNS_PREFIX, read_record

    for run_id in sorted(store.list_children(RUNS_PREFIX), reverse=True):
        try:
            record = read_record(store, run_id)
        except InputError:
            continue  # no run.json: nothing to resume from
        same = (record.commit, record.campaign_digest, record.selection, record.target, record.dirty) == \
            (plan.commit, plan.spec.digest, plan.selection_text, "local", False)
        if same and run_status(store, run_id).state != "succeeded":
            return run_id
    return None


def execute_record(record, store, run_dir, *, take_over: bool) -> None:
    """Hold the lease, restore the journal, trust what still verifies, and run the rest."""
    from campaign.run.lease import Lease

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


def _execute_held(record, store, run_dir, lease) -> None:
    from campaign.agent.agent import RUNNER_LOG, Agent, plan_for_record
    from campaign.ui.events import configure_events
    from campaign.run.journal import Journal, restore_journal
    from campaign.ui.progress import make_progress
    from campaign.run.resume import decide, past_runs, reap_orphans
    from campaign.run.record import run_key

    stopped = reap_orphans(record.run_id)  # first: a dead agent's stage must not write while we look
    key = run_key(record.run_id, "journal.jsonl")
    restore_journal(store, key, run_dir.journal)  # a new machine continues from the store's copy
    journal = Journal(run_dir.journal, store, key)
    past = past_runs(journal.entries)
    done, redo = decide(past, store, run_dir.outputs, run_dir.checkout)
    plan = plan_for_record(record, run_dir.checkout, done=done, redo=redo)
    log = configure_events(run_dir.logs / RUNNER_LOG)
    with make_progress() as progress, sigterm_as_interrupt():
        Agent(record, plan, store=store, run_dir=run_dir, journal=journal, past=past, lease=lease,
              log=log, progress=progress, stopped_leftovers=stopped).execute()


def _resumable(run_id: str, store_url: str | None, state_dir: Path | None):
    from campaign.run.record import RunDir, read_record
    from campaign.store import open_store

    root = find_root(Path.cwd())
    store = open_store(store_url or default_store(root))
    record = read_record(store, run_id)
    if record.target != "local":
        raise InputError(f"run {run_id} ran on the {record.target} target; resume it there, not locally.")
    return record, store, RunDir(state_dir_for(root, state_dir) / "runs" / run_id)


def _ensure_checkout(record, run_dir) -> None:
    from campaign.targets.local.checkout import prepare_checkout

    if run_dir.checkout.exists():
        return
    if record.dirty:
        raise PreflightRefused(
            f"run {record.run_id} ran with --allow-dirty and its working-tree copy {run_dir.checkout} is gone, "
            "so it cannot be resumed faithfully. Start a new run.")
    prepare_checkout(find_root(Path.cwd()), record.commit, run_dir.checkout, dirty=False)


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a spot reclaim, `kill`, systemd stop) is handled like Ctrl-C: stop the stage, record, upload."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _warn_dirty(plan: Plan) -> None:
    banner = "!" * 78
    print(f"{banner}\n--allow-dirty: this run uses your working tree AS IT IS, not a commit. Its results can "
          f"not be\nreproduced from git and must not be published. Rehearsal only; the AWS target refuses it.\n"
          f"{banner}", file=sys.stderr)
    for verdict in plan.verdicts:
        if verdict.overridden:
            for detail in verdict.details:
                print(f"  {detail}", file=sys.stderr)


def run_agent(run_id: str, store_url: str, *, checkout: Path, state_dir: Path, take_over: bool = False) -> None:
    """`campaign agent`: what userdata starts on an instance, in the clone it made of the run's commit.

    Started again for a run that already has a journal (a replaced instance), it resumes it.
    """
    from campaign.run.record import RunDir, read_record
    from campaign.store import open_store

    store = open_store(store_url)
    record = read_record(store, run_id)
    run_dir = RunDir(state_dir / "runs" / run_id, checkout_dir=checkout.resolve())
    execute_record(record, store, run_dir, take_over=take_over)
