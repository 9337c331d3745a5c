"""The agent: executes a run's plan in a clean checkout, on this machine or on an EC2 instance.

For each stage run: journal 'running', run the command with its full log, check its exit code
and declared outputs, upload outputs and log (verified), journal the result. A failed stage stops
its dependents. At the end the manifest lists every artifact with size and SHA-256.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from campaign.errors import Interrupted, PreflightRefused, StageFailed, StoreError
from campaign.graph import StageRun, expand
from campaign.host import read_host
from campaign.journal import FAILED, INTERRUPTED, RUNNING, SKIPPED, STARTED, SUCCEEDED, Journal, now_iso
from campaign.manifest import manifest_bytes
from campaign.plan import SKIP, Plan, build_plan
from campaign.process import run_logged
from campaign.runs import RunDir, RunRecord, run_key
from campaign.selection import parse_selection
from campaign.spec import load_campaign
from campaign.store import Artifact, Store
from campaign.templating import render

MAX_RETRY_BACKOFF_S = 60.0
RUNNER_LOG = "runner.jsonl"


def plan_for_record(record: RunRecord, checkout: Path) -> Plan:
    """The plan of a run, rebuilt from the checkout's own campaign file (the committed one)."""
    spec = load_campaign(checkout / record.campaign_file)
    if spec.digest != record.campaign_digest:
        raise PreflightRefused(
            f"{checkout / record.campaign_file} differs from the campaign file run {record.run_id} was planned "
            f"with (sha256 {record.campaign_digest[:12]}…): the checkout is not commit {record.commit}. "
            f"Clone that commit (git checkout {record.commit}) and start the agent there."
        )
    selection = parse_selection(record.selection, spec)
    return build_plan(spec, selection, expand(spec, selection), target=record.target, commit=record.commit,
                      host=read_host(), verdicts=[])


class Agent:
    def __init__(self, record: RunRecord, plan: Plan, *, store: Store, run_dir: RunDir, log, progress):
        self.record, self.plan, self.spec = record, plan, plan.spec
        self.store, self.dir, self.log, self.progress = store, run_dir, log, progress
        self.journal = Journal(run_dir.journal, store, run_key(record.run_id, "journal.jsonl"))
        self.artifacts: list[Artifact] = []
        self.states: dict[str, str] = {}
        self._last_problem: dict[str, str] = {}
        self._last_log: dict[str, Path] = {}

    def execute(self) -> None:
        """Run every stage run of the plan; raise StageFailed/StoreError/Interrupted unless all succeeded."""
        runs = self.plan.runs
        self.journal.record("run", state=STARTED, run_id=self.record.run_id, stage_runs=[p.id for p in runs])
        try:
            self._execute_all()
        except (KeyboardInterrupt, Interrupted):
            self._close(INTERRUPTED, "interrupted by the user or a signal")
            raise Interrupted(f"run {self.record.run_id} was interrupted; what existed was uploaded. "
                              f"`campaign status {self.record.run_id}` shows where it stopped.") from None
        except StoreError as err:
            self._close_after_store_error(err)
            raise
        failed = [run_id for run_id, state in self.states.items() if state == FAILED]
        if failed:
            self._close(FAILED, f"failed: {', '.join(failed)}")
            raise StageFailed(self._failure_message(failed))
        self._close(SUCCEEDED, "")

    def _execute_all(self) -> None:
        total = len(self.plan.runs)
        for index, planned in enumerate(self.plan.runs, 1):
            run = planned.run
            reason = planned.reason if planned.action == SKIP else self._blocker(run)
            if reason:
                self._skip(run, reason)
                continue
            self.progress.stage_started(index, total, run.id, self._incremental_path(run))
            try:
                self.log.info("stage started", stage_run=run.id, index=index, total=total)
                self.states[run.id] = self._run_with_retries(run)
            finally:
                self.progress.stage_ended()

    def _blocker(self, run: StageRun) -> str:
        not_done = [need for need in run.needs if self.states.get(need) != SUCCEEDED]
        if not_done:
            return f"needs {', '.join(not_done)}, which did not succeed"
        if FAILED in self.states.values() and not self.record.keep_going:
            return "not started: an earlier stage run failed (--keep-going runs independent stage runs anyway)"
        return ""

    def _skip(self, run: StageRun, reason: str) -> None:
        self.states[run.id] = SKIPPED
        self.journal.record("stage", stage_run=run.id, state=SKIPPED, reason=reason)
        self.log.warning("stage skipped", stage_run=run.id, reason=reason)

    def _run_with_retries(self, run: StageRun) -> str:
        attempts = 1 + run.stage.retries
        for attempt in range(1, attempts + 1):
            problem = self._attempt(run, attempt)
            if problem is None:
                return SUCCEEDED
            if attempt < attempts:
                backoff = min(2.0 ** attempt, MAX_RETRY_BACKOFF_S)
                self.log.warning("stage attempt failed; retrying", stage_run=run.id, attempt=attempt,
                                 problem=problem, retry_in_s=backoff)
                time.sleep(backoff)
        return FAILED

    def _attempt(self, run: StageRun, attempt: int) -> str | None:
        """One attempt: run, check, upload. The problem in one sentence, or None when it succeeded."""
        log_name = f"{run.id}.log" if attempt == 1 else f"{run.id}.attempt{attempt}.log"
        log_path = self.dir.logs / log_name
        started = now_iso()
        self.journal.record("stage", stage_run=run.id, state=RUNNING, attempt=attempt, log=f"logs/{log_name}")
        try:
            result = run_logged(self._command(run), cwd=self.dir.checkout, env=self._environment(run),
                                log_path=log_path, timeout_s=run.stage.timeout_s)
        except KeyboardInterrupt:
            self._store_attempt(run, log_path, log_name)
            self.journal.record("stage", stage_run=run.id, state=INTERRUPTED, attempt=attempt,
                                started_at=started, log=f"logs/{log_name}", reason="interrupted")
            raise
        problem = self._problem(run, result)
        self._last_log[run.id] = log_path
        if problem:
            self._last_problem[run.id] = problem
        self._store_attempt(run, log_path, log_name)
        state = FAILED if problem else SUCCEEDED
        self.journal.record("stage", stage_run=run.id, state=state, attempt=attempt, exit_code=result.exit_code,
                            started_at=started, duration_s=round(result.duration_s, 3), log=f"logs/{log_name}",
                            reason=problem or "", timed_out=result.timed_out)
        event = self.log.error if problem else self.log.info
        event("stage " + state, stage_run=run.id, attempt=attempt, duration_s=round(result.duration_s, 3),
              problem=problem, log=str(log_path))
        return problem

    def _problem(self, run: StageRun, result) -> str | None:
        if result.timed_out:
            return f"timed out after {run.stage.timeout_s:.0f}s; its process group was stopped"
        if result.exit_code != 0:
            return f"exited with code {result.exit_code}"
        missing = [out for out in run.outputs(self.spec) if not _produced(self.dir.outputs / out)]
        if missing:
            return f"exited 0 but did not produce {', '.join(missing)} (declared in produces/incremental)"
        return None

    def _store_attempt(self, run: StageRun, log_path: Path, log_name: str) -> None:
        """Upload the attempt's log and whatever outputs exist (also after a failure: nothing is lost)."""
        self._upload(log_path, run_key(self.record.run_id, "logs", log_name))
        if run.stage.upload:
            self._upload_outputs(run)

    def _upload_outputs(self, run: StageRun) -> None:
        for output in run.outputs(self.spec):
            path = self.dir.outputs / output
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if file.is_file():  # a missing output is reported by _problem, not here
                    relative = file.relative_to(self.dir.outputs).as_posix()
                    self._upload(file, run_key(self.record.run_id, "outputs", relative))

    def _upload(self, path: Path, key: str) -> None:
        self.artifacts.append(self.store.put_file(path, key))

    def _command(self, run: StageRun) -> str:
        return run.command(self.spec, run_id=self.record.run_id, output_dir=str(self.dir.outputs),
                           work_dir=str(self.dir.checkout))

    def _incremental_path(self, run: StageRun) -> Path | None:
        if not run.stage.incremental:
            return None
        context = run.context(self.spec, run_id=self.record.run_id, output_dir="", work_dir="")
        return self.dir.outputs / render(run.stage.incremental, context)

    def _environment(self, run: StageRun) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update({
            "PYTHONUNBUFFERED": "1",
            "CAMPAIGN_NAME": self.record.campaign,
            "CAMPAIGN_RUN_ID": self.record.run_id,
            "CAMPAIGN_STAGE": run.stage.name,
            "CAMPAIGN_STAGE_RUN": run.id,
            "CAMPAIGN_OUTPUT_DIR": str(self.dir.outputs),
            "CAMPAIGN_WORK_DIR": str(self.dir.checkout),
            "CAMPAIGN_COMMIT": self.record.commit or "",
        })
        if run.sf is not None:
            env["CAMPAIGN_SF"] = run.sf
        env.update({f"CAMPAIGN_VAR_{k.upper()}": str(v) for k, v in self.spec.vars.items()})
        return env

    def _close(self, state: str, reason: str) -> None:
        """Runner log, then manifest, then the journal's last entry (its mirror is the run's last write)."""
        self.log.info("run " + state, run_id=self.record.run_id, reason=reason or None)
        runner_log = self.dir.logs / RUNNER_LOG
        if runner_log.exists():
            self._upload(runner_log, run_key(self.record.run_id, "logs", RUNNER_LOG))
        manifest_key = run_key(self.record.run_id, "manifest.json")
        self.store.put_bytes(manifest_bytes(self.record.run_id, self.artifacts), manifest_key)
        self.journal.record("run", state=state, reason=reason, artifacts=len(self.artifacts))

    def _close_after_store_error(self, err: StoreError) -> None:
        try:
            self.journal.record("run", state=FAILED, reason=f"store failure: {err}")
        except StoreError as mirror_err:  # the store is what failed; the local journal has the entry
            self.log.error("could not mirror the journal after a store failure", error=str(mirror_err),
                           journal=str(self.dir.journal))

    def _failure_message(self, failed: list[str]) -> str:
        lines = [f"run {self.record.run_id} failed: {len(failed)} stage run(s) did not succeed."]
        for run_id in failed:
            lines.append(f"  {run_id}: {self._last_problem.get(run_id, 'failed')}; log {self._last_log[run_id]}")
        lines.append(f"`campaign status {self.record.run_id}` shows every stage run and why; "
                     f"`campaign logs {self.record.run_id} '{failed[0]}'` prints a log from the store.")
        return "\n".join(lines)


def _produced(path: Path) -> bool:
    if path.is_dir():
        return any(p.is_file() for p in path.rglob("*"))
    return path.is_file()


