"""The local target: the exact on-instance path, on this machine. The agent runs in this process,
in a clean clone of the commit under .campaign/runs/<run-id>/checkout."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from campaign.errors import InputError, PreflightRefused
from campaign.planning.plan import Plan
from campaign.prebuilt.artifact import plan_build_source
from campaign.preflight.capacity import with_local_capacity
from campaign.preflight.planner import make_plan
from campaign.run.cache import plan_cache
from campaign.run.dirs import RunDir, default_store, state_dir_for
from campaign.run.inspection import find_unfinished
from campaign.run.journal import read_entries
from campaign.run.manifest import artifacts_of_journal
from campaign.run.record import RunRecord, read_record
from campaign.store import Store, open_store
from campaign.system.checkout import prepare_checkout
from campaign.system.git import find_root, head_commit
from campaign.system.host import fingerprint
from campaign.targets.base import Out, Outcome, Prepared, RunRequest


class LocalTarget:
    """The agent is imported where it runs, not at the top: measured with `python -X importtime`, its
    imports (structlog, rich's live display) add about 0.2 s to every `campaign plan`, whose budget is 0.3 s."""

    name = "local"

    def preflight(self, request: RunRequest, *, for_plan: bool = False) -> Prepared:
        plan, root = make_plan(
            request.campaign_file, request.selection, allow_dirty=request.allow_dirty, overrides=request.vars
        )
        if plan.spec.cluster is not None and self.name == "local" and not for_plan:
            raise PreflightRefused(
                f"{request.campaign_file} runs on a cluster: `campaign cluster up -f "
                f"{request.campaign_file}`, then `campaign run … -f {request.campaign_file} "
                "--cluster NAME`."
            )
        store_url = request.store or default_store(root)
        plan = with_local_capacity(plan, state_dir_for(root, request.state_dir))
        plan = plan_cache(plan_build_source(plan, store_url), store_url, root)
        return Prepared(plan, root, store_url, request.state_dir)

    def describe(self, prepared: Prepared) -> list[str]:
        return []

    def describe_json(self, prepared: Prepared) -> dict[str, Any]:
        return {}

    def new_record(self, prepared: Prepared, request: RunRequest) -> RunRecord:
        record = RunRecord.new(
            prepared.plan,
            prepared.root,
            store=prepared.store_url,
            target=self.name,
            keep_going=request.keep_going,
            sync_interval_s=request.sync_interval_s,
            host=fingerprint(),
        )
        return replace(record, sides=dict(request.sides), order_seed=request.order_seed) if request.sides else record

    def provision(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        """The run's clean checkout and its run.json; the store is probed before anything is written."""
        if prepared.plan.dirty:
            _warn_dirty(prepared.plan)
        store = open_store(prepared.store_url)
        store.probe()
        run_dir = self._run_dir(prepared, record.run_id)
        prepare_checkout(prepared.root, record.commit, run_dir.checkout, dirty=record.dirty)
        store.put_bytes(record.to_bytes(), record.keys.record)

    def execute(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        from campaign.agent.execute import execute_record

        run_dir = self._run_dir(prepared, record.run_id)
        execute_record(record, open_store(prepared.store_url), run_dir, take_over=False)

    def watch(self, prepared: Prepared, record: RunRecord, out: Out) -> Outcome:
        return Outcome("succeeded")  # the agent ran in the foreground; a failure was raised by execute

    def collect(self, prepared: Prepared, record: RunRecord, outcome: Outcome, out: Out) -> None:
        say_where_results_are(out, open_store(prepared.store_url), record, self._run_dir(prepared, record.run_id))

    def teardown(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        """Nothing to remove: the checkout stays for a resume."""

    def finish(self, prepared: Prepared, record: RunRecord, outcome: Outcome) -> None:
        """execute already raised for a run that did not succeed."""

    def resume(self, run_id: str, request: RunRequest, out: Out) -> str:
        """`campaign resume RUN`: continue a local run where it stopped."""
        from campaign.agent.execute import execute_record

        record, store, run_dir = _resumable(run_id, request.store, request.state_dir)
        _warn_if_head_moved(record)
        out(f"run: {run_id}")
        print(
            f"resuming run {run_id} (selection {record.selection}, commit {(record.commit or '')[:12]})",
            file=sys.stderr,
        )
        _ensure_checkout(record, run_dir)
        execute_record(record, store, run_dir, take_over=request.take_over)
        say_where_results_are(out, store, record, run_dir)
        return run_id

    def resume_unfinished(self, request: RunRequest, out: Out) -> str | None:
        """`run --resume`: the newest unfinished run of the same commit, file and selection, continued."""
        prepared = self.preflight(request)
        unfinished = find_unfinished(
            open_store(prepared.store_url),
            prepared.plan,
            target=self.name,
            warn=lambda message: print(f"--resume: {message}", file=sys.stderr),
        )
        if unfinished is None:
            print(
                "--resume: no unfinished run of this commit, campaign file and selection; starting a new run.",
                file=sys.stderr,
            )
            return None
        return self.resume(unfinished, request, out)

    def resume_plan(self, run_id: str, request: RunRequest) -> Plan:
        """What `campaign resume RUN` would do, without doing it."""
        from campaign.agent.execute import resume_preview

        record, store, run_dir = _resumable(run_id, request.store, request.state_dir)
        _warn_if_head_moved(record)
        if not run_dir.checkout.exists():
            raise InputError(
                f"run {run_id} has no local checkout at {run_dir.checkout}; `campaign resume {run_id}` "
                "recreates it, then shows the same plan as it runs."
            )
        return resume_preview(record, store, run_dir)

    def _run_dir(self, prepared: Prepared, run_id: str) -> RunDir:
        return RunDir.of(state_dir_for(prepared.root, prepared.context), run_id)


def say_where_results_are(out: Out, store: Store, record: RunRecord, run_dir: RunDir) -> None:
    """The run's summary (totals per engine, failures, wrong answers, reports), an `ab` run's comparison
    (stored with the run by the agent), then the results files (each uploaded output, at its local copy) and
    where the store keeps them. campaign.results is imported here, not at the top (the `plan` budget)."""
    from campaign.results.command import ab_comparisons
    from campaign.results.render import as_text
    from campaign.results.summary import run_summary

    for line in run_summary(run_dir.outputs):
        out(line)
    if record.sides:
        for comparison in ab_comparisons(store, record.run_id):
            out(as_text(comparison))
        out(f"comparison: {store.where(record.keys.comparison)} and {store.where(record.keys.comparison_html)}")
    prefix = record.keys.outputs + "/"
    journal = run_dir.journal
    entries = read_entries(journal.read_bytes(), str(journal)) if journal.exists() else []
    files = sorted(a.key.removeprefix(prefix) for a in artifacts_of_journal(entries) if a.key.startswith(prefix))
    out(f"results (stored in {store.where(record.keys.outputs)}/):")
    for name in files:
        out(f"  {run_dir.outputs / name}")


def _warn_if_head_moved(record: RunRecord) -> None:
    """A resume continues the run's own commit; say so when HEAD has moved (e.g. a fix was committed)."""
    head = head_commit(find_root(Path.cwd()))
    if head is None or record.commit is None or head == record.commit:
        return
    print(
        f"note: run {record.run_id} continues its own commit {record.commit[:12]}; HEAD is now {head[:12]}, "
        f"and commits made since the run started (a fix, say) are NOT in it. To run HEAD instead, start a new "
        f"run: `campaign run {record.selection}`.",
        file=sys.stderr,
    )


def _resumable(run_id: str, store_url: str | None, state_dir: Path | None) -> tuple[RunRecord, Store, RunDir]:
    root = find_root(Path.cwd())
    store = open_store(store_url or default_store(root))
    record = read_record(store, run_id)
    if record.target == "cluster":
        raise InputError(f"run {run_id} ran on a cluster; resume it there: `campaign resume {run_id} --cluster NAME`.")
    if record.target != "local":
        raise InputError(f"run {run_id} ran on the {record.target} target; resume it there, not locally.")
    return record, store, RunDir.of(state_dir_for(root, state_dir), run_id)


def _ensure_checkout(record: RunRecord, run_dir: RunDir) -> None:
    if run_dir.checkout.exists():
        return
    if record.dirty:
        raise PreflightRefused(
            f"run {record.run_id} ran with --allow-dirty and its working-tree copy {run_dir.checkout} is gone, "
            "so it cannot be resumed faithfully. Start a new run."
        )
    prepare_checkout(find_root(Path.cwd()), record.commit, run_dir.checkout, dirty=False)


def _warn_dirty(plan: Plan) -> None:
    banner = "!" * 78
    print(
        f"{banner}\n--allow-dirty: this run uses your working tree AS IT IS, not a commit. Its results can "
        f"not be\nreproduced from git and must not be published. Rehearsal only; the AWS target refuses it.\n"
        f"{banner}",
        file=sys.stderr,
    )
    for verdict in plan.verdicts:
        if verdict.overridden:
            for detail in verdict.details:
                print(f"  {detail}", file=sys.stderr)
