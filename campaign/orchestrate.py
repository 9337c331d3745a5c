"""The one place that joins planning (pure) and execution (I/O): `plan` and `run` commands."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import PreflightRefused
from campaign.gitrepo import find_root, head_commit
from campaign.graph import expand
from campaign.host import HostFacts, read_host
from campaign.journal import now_iso
from campaign.plan import Plan, build_plan
from campaign.preflight import Verdict, smoke_gate
from campaign.selection import parse_selection
from campaign.spec import load_campaign

STATE_DIR_NAME = ".campaign"


@dataclass(frozen=True)
class RunOptions:
    campaign_file: Path
    selection: str | None = None
    store: str | None = None
    keep_going: bool = False
    allow_dirty: bool = False
    state_dir: Path | None = None


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
    verdicts = [smoke_gate(spec, runs, root, allow_dirty=allow_dirty), _host_verdict(host, runs)]
    plan = build_plan(spec, selection, runs, target=target, commit=head_commit(root), host=host, verdicts=verdicts)
    return plan, root


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
    from campaign.agent import RUNNER_LOG, Agent, plan_for_record
    from campaign.events import configure_events
    from campaign.progress import make_progress
    from campaign.runs import RunDir, RunRecord, new_run_id, run_key
    from campaign.store import open_store
    from campaign.targets.local import prepare_checkout

    plan, root = make_plan(options.campaign_file, options.selection, allow_dirty=options.allow_dirty)
    if plan.refusals:
        raise PreflightRefused(refusal_message(plan))
    dirty = any(v.overridden for v in plan.verdicts)
    store_url = options.store or default_store(root)
    store = open_store(store_url)
    run_id = new_run_id(plan.commit)
    out(f"run: {run_id}")
    if dirty:
        _warn_dirty(plan)
    store.probe()
    run_dir = RunDir(state_dir_for(root, options.state_dir) / "runs" / run_id)
    record = RunRecord(
        run_id=run_id, campaign=plan.spec.name, campaign_file=plan.spec.path.relative_to(root).as_posix(),
        campaign_digest=plan.spec.digest, commit=plan.commit, dirty=dirty, selection=plan.selection_text,
        target="local", store=store_url, created_at=now_iso(), keep_going=options.keep_going,
    )
    prepare_checkout(root, plan.commit, run_dir.checkout, dirty=dirty)
    store.put_bytes(record.to_bytes(), run_key(run_id, "run.json"))
    log = configure_events(run_dir.logs / RUNNER_LOG)
    agent_plan = plan_for_record(record, run_dir.checkout)
    with make_progress() as progress, sigterm_as_interrupt():
        Agent(record, agent_plan, store=store, run_dir=run_dir, log=log, progress=progress).execute()
    out(f"results: {store.where(run_key(run_id, 'outputs'))}")
    out(f"local copy: {run_dir.outputs}")
    return run_id


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


def run_agent(run_id: str, store_url: str, *, checkout: Path, state_dir: Path) -> None:
    """`campaign agent`: what userdata starts on an instance, in the clone it made of the run's commit."""
    from campaign.agent import RUNNER_LOG, Agent, plan_for_record
    from campaign.events import configure_events
    from campaign.progress import make_progress
    from campaign.runs import RunDir, read_record
    from campaign.store import open_store

    store = open_store(store_url)
    record = read_record(store, run_id)
    run_dir = RunDir(state_dir / "runs" / run_id, checkout_dir=checkout.resolve())
    log = configure_events(run_dir.logs / RUNNER_LOG)
    plan = plan_for_record(record, run_dir.checkout)
    with make_progress() as progress, sigterm_as_interrupt():
        Agent(record, plan, store=store, run_dir=run_dir, log=log, progress=progress).execute()
