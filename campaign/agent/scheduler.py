"""The scheduler: runs a plan's stage runs in order, on this machine or an EC2 instance.

For each stage run it decides (done and verified; skipped with the reason; blocked by a failed
need) or runs attempts until one succeeds or the retries are spent (campaign.agent.attempt). A
failed stage stops its dependents. At the end the manifest lists every artifact of every session
of the run, and the journal's last entry closes it.

Resuming is the same code: the journal already holds entries, stage runs whose outputs still
verify are "done", the one that was in flight runs again (an incremental one from its first
missing record), and nothing already produced is overwritten: stale outputs are moved aside.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from campaign.agent.attempt import Attempt, upload
from campaign.agent.context import AgentContext
from campaign.agent.outputs import StageOutputs
from campaign.errors import Interrupted, PreflightRefused, StageFailed, StoreError
from campaign.planning.graph import StageRun
from campaign.planning.plan import DONE, SKIP, Plan
from campaign.run.dirs import RunDir
from campaign.run.entries import RunEntry, StageEntry
from campaign.run.journal import (
    FAILED,
    INTERRUPTED,
    INVALIDATED,
    SKIPPED,
    STARTED,
    SUCCEEDED,
    Journal,
)
from campaign.run.keys import RUNNER_LOG
from campaign.run.lease import Lease
from campaign.run.manifest import artifacts_of_journal, manifest_bytes
from campaign.run.record import RunRecord
from campaign.run.resume import PastRun, in_flight
from campaign.store import Store

MAX_RETRY_BACKOFF_S = 60.0


class Scheduler:
    def __init__(
        self,
        record: RunRecord,
        plan: Plan,
        *,
        store: Store,
        run_dir: RunDir,
        journal: Journal,
        past: dict[str, PastRun],
        lease: Lease,
        log: Any,
        progress: Any,
        stopped_leftovers: list[int] | None = None,
    ):
        self.record, self.plan, self.store, self.dir = record, plan, store, run_dir
        self.journal, self.past, self.lease, self.log, self.progress = journal, past, lease, log, progress
        self.ctx = AgentContext(
            record, plan.spec, store, run_dir, journal, log, StageOutputs(plan.spec, run_dir, record.keys)
        )
        self.stopped_leftovers = list(stopped_leftovers or [])
        self.states: dict[str, str] = {}
        self._last_problem: dict[str, str] = {}
        self._last_log: dict[str, Path] = {}

    def execute(self) -> None:
        """Run every stage run of the plan; raise StageFailed/StoreError/Interrupted unless all succeeded."""
        self._stop_leftovers()
        self.journal.append(
            RunEntry(
                STARTED, run_id=self.record.run_id, resumed=bool(self.past), stage_runs=[p.id for p in self.plan.runs]
            )
        )
        try:
            self._execute_all()
        except (KeyboardInterrupt, Interrupted):
            self._close(INTERRUPTED, "interrupted by the user or a signal")
            raise Interrupted(
                f"run {self.record.run_id} was interrupted; what existed was uploaded. "
                f"`campaign resume {self.record.run_id}` continues it."
            ) from None
        except StoreError as err:
            self._close_after_store_error(err)
            raise
        failed = [run_id for run_id, state in self.states.items() if state == FAILED]
        if failed:
            self._close(FAILED, f"failed: {', '.join(failed)}")
            raise StageFailed(self._failure_message(failed))
        self._close(SUCCEEDED, "")

    def _stop_leftovers(self) -> None:
        """Say what the resume found: stage runs in flight, and leftover stages it stopped first."""
        for past in in_flight(self.past):
            self.log.warning(
                "stage run was in flight when the previous agent stopped; it runs again",
                stage_run=past.entry.stage_run,
                attempt=past.attempts,
            )
        for pgid in self.stopped_leftovers:
            self.log.warning("stopped a leftover stage process group of a dead agent", pgid=pgid)

    def _execute_all(self) -> None:
        total = len(self.plan.runs)
        for index, planned in enumerate(self.plan.runs, 1):
            run = planned.run
            self._check_lease()
            if planned.action == DONE:
                self.states[run.id] = SUCCEEDED
                self.log.info("stage done, verified", stage_run=run.id, reason=planned.reason)
                continue
            reason = planned.reason if planned.action == SKIP else self._blocker(run)
            if reason:
                self._skip(run, reason)
                continue
            if planned.redo:
                self.journal.append(StageEntry(run.id, INVALIDATED, reason=planned.redo))
                self.log.warning("stage runs again", stage_run=run.id, reason=planned.redo)
            self.progress.stage_started(index, total, run.id, self.ctx.outputs.incremental_path(run))
            try:
                self.log.info("stage started", stage_run=run.id, index=index, total=total)
                self.states[run.id] = self._run_with_retries(run)
            finally:
                self.progress.stage_ended()

    def _check_lease(self) -> None:
        if self.lease.lost:
            raise PreflightRefused(
                f"run {self.record.run_id}: {self.lease.lost}; this agent stops here "
                "without writing more. `campaign status` shows the agent that holds it."
            )
        if self.lease.beat_error:
            self.log.warning("lease heartbeat failed; retrying", error=self.lease.beat_error)

    def _blocker(self, run: StageRun) -> str:
        not_done = [need for need in run.needs if self.states.get(need) != SUCCEEDED]
        if not_done:
            return f"needs {', '.join(not_done)}, which did not succeed"
        if FAILED in self.states.values() and not self.record.keep_going:
            return "not started: an earlier stage run failed (--keep-going runs independent stage runs anyway)"
        return ""

    def _skip(self, run: StageRun, reason: str) -> None:
        self.states[run.id] = SKIPPED
        self.journal.append(StageEntry(run.id, SKIPPED, reason=reason))
        self.log.warning("stage skipped", stage_run=run.id, reason=reason)

    def _run_with_retries(self, run: StageRun) -> str:
        first = self.past[run.id].attempts + 1 if run.id in self.past else 1
        last = first + run.stage.retries
        for attempt in range(first, last + 1):
            result = Attempt(self.ctx, run, attempt).execute()
            self._last_log[run.id] = result.log_path
            problem = result.problem
            if problem is None:
                return SUCCEEDED
            self._last_problem[run.id] = problem
            if attempt < last:
                backoff = min(2.0 ** (attempt - first + 1), MAX_RETRY_BACKOFF_S)
                self.log.warning(
                    "stage attempt failed; retrying",
                    stage_run=run.id,
                    attempt=attempt,
                    problem=problem,
                    retry_in_s=backoff,
                )
                time.sleep(backoff)
        return FAILED

    def _close(self, state: str, reason: str) -> None:
        """Runner log, then manifest, then the journal's last entry (its mirror is the run's last write)."""
        self.log.info("run " + state, run_id=self.record.run_id, reason=reason or None)
        artifacts = artifacts_of_journal(self.journal.entries)
        runner_log = self.dir.logs / RUNNER_LOG
        if runner_log.exists():
            artifacts.append(upload(self.ctx, runner_log, self.record.keys.runner_log))
        self.store.put_bytes(manifest_bytes(self.record.run_id, artifacts), self.record.keys.manifest)
        self.journal.append(RunEntry(state, reason=reason, artifact_count=len({a.key for a in artifacts})))

    def _close_after_store_error(self, err: StoreError) -> None:
        try:
            self.journal.append(RunEntry(FAILED, reason=f"store failure: {err}"))
        except StoreError as mirror_err:  # the store is what failed; the local journal has the entry
            self.log.error(
                "could not mirror the journal after a store failure",
                error=str(mirror_err),
                journal=str(self.dir.journal),
            )

    def _failure_message(self, failed: list[str]) -> str:
        lines = [f"run {self.record.run_id} failed: {len(failed)} stage run(s) did not succeed."]
        for run_id in failed:
            lines.append(f"  {run_id}: {self._last_problem.get(run_id, 'failed')}; log {self._last_log[run_id]}")
        lines.append(
            f"`campaign status {self.record.run_id}` shows every stage run and why; "
            f"`campaign logs {self.record.run_id} '{failed[0]}'` prints a log from the store."
        )
        return "\n".join(lines)
