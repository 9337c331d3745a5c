"""The agent: executes a run's plan in a clean checkout, on this machine or on an EC2 instance.

For each stage run: journal 'running', run the command with its full log (incremental results
uploaded as they grow), check its exit code and declared outputs, upload outputs and log
(verified), journal the result with every artifact it stored. A failed stage stops its dependents.
At the end the manifest lists every artifact of every session of the run.

Resuming is the same code: the journal already holds entries, stage runs whose outputs still
verify are "done", the one that was in flight runs again (an incremental one from its first
missing record), and nothing already produced is overwritten: stale outputs are moved aside.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from rich.filesize import decimal

import campaign.prebuilt.artifact as prebuilt
from campaign.errors import Interrupted, PreflightRefused, StageFailed, StoreError
from campaign.faults import crash_point
from campaign.planning.graph import StageRun, expand
from campaign.planning.plan import DONE, SKIP, Plan, build_plan
from campaign.run.incremental import IncrementalSync, prepare_for_resume
from campaign.run.journal import (
    FAILED,
    INTERRUPTED,
    INVALIDATED,
    RUNNING,
    SKIPPED,
    STARTED,
    SUCCEEDED,
    Journal,
    now_iso,
)
from campaign.run.lease import Lease
from campaign.run.manifest import artifacts_of_journal, manifest_bytes
from campaign.run.outputdir import make_output_folders, output_files, outside_problem
from campaign.run.record import RunDir, RunRecord, run_key
from campaign.run.resume import PastRun, in_flight, local_fingerprint
from campaign.spec.load import load_campaign
from campaign.spec.selection import parse_selection
from campaign.spec.templating import render
from campaign.store import Artifact, Store
from campaign.system.host import read_host
from campaign.system.links import drop_link
from campaign.system.process import ProcessResult, run_logged
from campaign.ui.tables import duration_text

MAX_RETRY_BACKOFF_S = 60.0
RUNNER_LOG = "runner.jsonl"


def plan_for_record(record: RunRecord, checkout: Path, *, done: dict[str, str] | None = None,
                    redo: dict[str, str] | None = None) -> Plan:
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
                      host=read_host(), verdicts=[], done=done or {}, redo=redo or {})


class Agent:
    def __init__(self, record: RunRecord, plan: Plan, *, store: Store, run_dir: RunDir, journal: Journal,
                 past: dict[str, PastRun], lease: Lease, log, progress, stopped_leftovers: list[int] = ()):
        self.record, self.plan, self.spec = record, plan, plan.spec
        self.store, self.dir, self.journal, self.past = store, run_dir, journal, past
        self.lease, self.log, self.progress = lease, log, progress
        self.stopped_leftovers = list(stopped_leftovers)
        self.states: dict[str, str] = {}
        self._last_problem: dict[str, str] = {}
        self._last_log: dict[str, Path] = {}
        self._build_notes: dict[str, dict] = {}  # build stage run -> its source and checkout outputs, for the journal

    def execute(self) -> None:
        """Run every stage run of the plan; raise StageFailed/StoreError/Interrupted unless all succeeded."""
        self._stop_leftovers()
        self.journal.record("run", state=STARTED, run_id=self.record.run_id, resumed=bool(self.past),
                            stage_runs=[p.id for p in self.plan.runs])
        try:
            self._execute_all()
        except (KeyboardInterrupt, Interrupted):
            self._close(INTERRUPTED, "interrupted by the user or a signal")
            raise Interrupted(f"run {self.record.run_id} was interrupted; what existed was uploaded. "
                              f"`campaign resume {self.record.run_id}` continues it.") from None
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
            self.log.warning("stage run was in flight when the previous agent stopped; it runs again",
                             stage_run=past.entry["stage_run"], attempt=past.attempts)
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
                self.journal.record("stage", stage_run=run.id, state=INVALIDATED, reason=planned.redo)
                self.log.warning("stage runs again", stage_run=run.id, reason=planned.redo)
            self.progress.stage_started(index, total, run.id, self._incremental_path(run))
            try:
                self.log.info("stage started", stage_run=run.id, index=index, total=total)
                self.states[run.id] = self._run_with_retries(run)
            finally:
                self.progress.stage_ended()

    def _check_lease(self) -> None:
        if self.lease.lost:
            raise PreflightRefused(f"run {self.record.run_id}: {self.lease.lost}; this agent stops here "
                                   "without writing more. `campaign status` shows the agent that holds it.")
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
        self.journal.record("stage", stage_run=run.id, state=SKIPPED, reason=reason)
        self.log.warning("stage skipped", stage_run=run.id, reason=reason)

    def _run_with_retries(self, run: StageRun) -> str:
        first = self.past[run.id].attempts + 1 if run.id in self.past else 1
        last = first + run.stage.retries
        for attempt in range(first, last + 1):
            problem = self._attempt(run, attempt)
            if problem is None:
                return SUCCEEDED
            if attempt < last:
                backoff = min(2.0 ** (attempt - first + 1), MAX_RETRY_BACKOFF_S)
                self.log.warning("stage attempt failed; retrying", stage_run=run.id, attempt=attempt,
                                 problem=problem, retry_in_s=backoff)
                time.sleep(backoff)
        return FAILED

    def _attempt(self, run: StageRun, attempt: int) -> str | None:
        """One attempt: run, check, upload. The problem in one sentence, or None when it succeeded."""
        log_name = f"{run.id}.log" if attempt == 1 else f"{run.id}.attempt{attempt}.log"
        log_path = self.dir.logs / log_name
        self._set_aside_stale_outputs(run, attempt)
        resumed_records = self._prepare_incremental(run)
        make_output_folders(self.dir.outputs, list(run.outputs(self.spec)))
        started = now_iso()
        self.journal.record("stage", stage_run=run.id, state=RUNNING, attempt=attempt, log=f"logs/{log_name}",
                            resumed_records=resumed_records)
        crash_point("stage.start")
        try:
            result = self._run_process(run, log_path, resumed_records)
        except KeyboardInterrupt:
            artifacts = self._store_attempt(run, log_path, log_name)
            self.journal.record("stage", stage_run=run.id, state=INTERRUPTED, attempt=attempt, started_at=started,
                                log=f"logs/{log_name}", reason="interrupted", artifacts=artifacts)
            raise
        crash_point("stage.end")
        problem = self._problem(run, result)
        self._last_log[run.id] = log_path
        if problem:
            self._last_problem[run.id] = problem
        artifacts = self._store_attempt(run, log_path, log_name)
        local_outputs = self._local_outputs(run) if not problem and not run.stage.upload else []
        if not problem and run.stage.build_output:  # checked by a resume: a new machine's checkout lacks them
            self._build_notes.setdefault(run.id, {})["checkout_outputs"] = list(run.stage.build_output)
        state = FAILED if problem else SUCCEEDED
        self.journal.record("stage", stage_run=run.id, state=state, attempt=attempt, exit_code=result.exit_code,
                            started_at=started, duration_s=round(result.duration_s, 3), log=f"logs/{log_name}",
                            reason=problem or "", timed_out=result.timed_out, artifacts=artifacts,
                            local_outputs=local_outputs, **self._build_notes.pop(run.id, {}))
        event = self.log.error if problem else self.log.info
        event("stage " + state, stage_run=run.id, attempt=attempt, duration_s=round(result.duration_s, 3),
              problem=problem, log=str(log_path))
        return problem

    def _run_process(self, run: StageRun, log_path: Path, resumed_records: int):
        if run.stage.build_output:
            fetched = self._fetch_prebuilt(run, log_path)
            if fetched is not None:
                return fetched
        env = self._environment(run, resumed_records)
        command = run.command(self.spec, run_id=self.record.run_id, output_dir=str(self.dir.outputs),
                              work_dir=str(self.dir.checkout))
        incremental = self._incremental_path(run)
        if incremental is None:
            return run_logged(command, cwd=self.dir.checkout, env=env, log_path=log_path,
                              timeout_s=run.stage.timeout_s)
        with IncrementalSync(incremental, self.store, self._output_key(incremental),
                             interval_s=self.record.sync_interval_s) as sync:
            result = run_logged(command, cwd=self.dir.checkout, env=env, log_path=log_path,
                                timeout_s=run.stage.timeout_s)
        if sync.error:
            self.log.warning("incremental upload failed during the stage; the final upload decides",
                             stage_run=run.id, error=str(sync.error))
        return result

    def _fetch_prebuilt(self, run: StageRun, log_path: Path) -> ProcessResult | None:
        """The build stage fetches the commit's prebuilt when the store has a usable one; else it says so, loudly."""
        found = prebuilt.lookup(self.store, self.spec, self.record.commit, dirty=self.record.dirty)
        if found.usable:
            try:
                fetched = prebuilt.fetch(self.store, self.record.commit, found, self.dir.checkout, self.dir.root,
                                         run.stage.build_output)
            except prebuilt.PrebuiltRejected as err:
                found = prebuilt.Lookup(False, f"the prebuilt was refused: {err}")
            else:
                _append(log_path, f"campaign: fetched {self.store.where(fetched.key)} "
                        f"({decimal(fetched.size)}, sha256 {fetched.sha256} verified) and extracted "
                        f"{fetched.members} entries in {fetched.seconds:.1f}s; nothing was compiled.")
                self.log.info("build fetched from the prebuilt; nothing compiled", stage_run=run.id,
                              key=fetched.key, sha256=fetched.sha256, seconds=round(fetched.seconds, 3))
                self._build_notes[run.id] = {"build_source": "prebuilt", "prebuilt": {
                    "key": fetched.key, "size": fetched.size, "sha256": fetched.sha256}}
                return ProcessResult(0, False, fetched.seconds)
        warning = self._building_here_warning(run, found)
        print(f"{'!' * 78}\n{warning}\n{'!' * 78}", file=sys.stderr)
        _append(log_path, "campaign: " + warning.replace("\n", "\ncampaign: "))
        self.log.warning("no usable prebuilt: building on this machine", stage_run=run.id, reason=found.reason)
        self._build_notes[run.id] = {"build_source": "built here", "prebuilt_unusable": found.reason}
        return None

    def _building_here_warning(self, run: StageRun, found: prebuilt.Lookup) -> str:
        latest = prebuilt.last_prebuild(self.store)
        took = (f"The last prebuild in this store (commit {latest[0]}) took {duration_text(latest[1])} on a CI "
                "runner" if latest else "No prebuild in this store to time it by; a cold Rust workspace build "
                "takes minutes")
        limit = f" (stage timeout {duration_text(run.stage.timeout_s)})" if run.stage.timeout_s else ""
        command = run.command(self.spec, run_id=self.record.run_id, output_dir=str(self.dir.outputs),
                              work_dir=str(self.dir.checkout))
        if "cargo " in command and shutil.which("cargo") is None:
            took += " (and cargo is not on PATH here: the build will fail; install Rust on this machine)"
        return (f"BUILDING ON THIS MACHINE: {found.reason}.\n"
                f"{took}; this run waits for it{limit}, on paid time when it is an instance.\n"
                f"To fetch a build in seconds instead: push the commit to main so the prebuild workflow stores it, "
                f"or run `campaign prebuild --store {self.record.store}` in the repository at commit "
                f"{(self.record.commit or '?')[:12]}.")

    def _missing_build_output(self, run: StageRun) -> list[str]:
        return [path for path in run.stage.build_output if not (self.dir.checkout / path).exists()]

    def _problem(self, run: StageRun, result) -> str | None:
        if result.timed_out:
            return f"timed out after {run.stage.timeout_s:.0f}s; its process group was stopped"
        if result.exit_code != 0:
            return f"exited with code {result.exit_code}"
        outside = outside_problem(self.dir.outputs, list(run.outputs(self.spec)))
        if outside:
            return outside
        missing = [out for out in run.outputs(self.spec) if not _produced(self.dir.outputs / out)]
        if missing:
            return f"exited 0 but did not produce {', '.join(missing)} (declared in produces/incremental)"
        missing = self._missing_build_output(run)
        if missing:
            return f"exited 0 but did not produce {', '.join(missing)} in the checkout (declared in build_output)"
        return None

    def _set_aside_stale_outputs(self, run: StageRun, attempt: int) -> None:
        """Outputs left by an earlier attempt or session move to superseded/, never overwritten.

        The incremental file stays: the stage continues it.
        """
        incremental = self._incremental_path(run)
        for output in run.outputs(self.spec):
            path = self.dir.outputs / output
            if path == incremental or not (path.exists() or path.is_symlink()):
                continue
            aside = self.dir.root / "superseded" / f"{run.id}.before-attempt{attempt}" / output
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, aside)
            self.log.warning("moved an earlier output aside", stage_run=run.id, output=output, to=str(aside))

    def _prepare_incremental(self, run: StageRun) -> int:
        incremental = self._incremental_path(run)
        if incremental is None:
            return 0
        target = drop_link(incremental)
        if target is not None:
            self.log.warning("removed a symlink where the incremental file belongs (its target untouched)",
                             stage_run=run.id, path=str(incremental), target=target)
        return prepare_for_resume(incremental, self.store, self._output_key(incremental))

    def _store_attempt(self, run: StageRun, log_path: Path, log_name: str) -> list[dict]:
        """Upload the attempt's log and whatever outputs exist (also after a failure: nothing is lost)."""
        artifacts = [self._upload(log_path, run_key(self.record.run_id, "logs", log_name))]
        if run.stage.upload:
            artifacts += [self._upload(file, self._output_key(file)) for file in self._output_files(run)]
        return [a.to_dict() for a in artifacts]

    def _local_outputs(self, run: StageRun) -> list[dict]:
        """Fingerprints of outputs kept only here (upload: false), so a resume can check them."""
        return [local_fingerprint(file, self.dir.outputs) for file in self._output_files(run)]

    def _output_files(self, run: StageRun) -> list[Path]:
        return output_files(self.dir.outputs, list(run.outputs(self.spec)))  # missing or outside: see _problem

    def _upload(self, path: Path, key: str) -> Artifact:
        crash_point("upload")
        return self.store.put_file(path, key)

    def _output_key(self, path: Path) -> str:
        return run_key(self.record.run_id, "outputs", path.relative_to(self.dir.outputs).as_posix())

    def _incremental_path(self, run: StageRun) -> Path | None:
        if not run.stage.incremental:
            return None
        context = run.context(self.spec, run_id=self.record.run_id, output_dir="", work_dir="")
        return self.dir.outputs / render(run.stage.incremental, context)

    def _environment(self, run: StageRun, resumed_records: int) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.pop("CAMPAIGN_FAULT", None)  # crash points are for the agent, never its stages
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
        incremental = self._incremental_path(run)
        if incremental is not None:
            env["CAMPAIGN_INCREMENTAL"] = str(incremental)
        if resumed_records:
            env["CAMPAIGN_RESUME"] = "1"
        env.update({f"CAMPAIGN_VAR_{k.upper()}": str(v) for k, v in self.spec.vars.items()})
        return env

    def _close(self, state: str, reason: str) -> None:
        """Runner log, then manifest, then the journal's last entry (its mirror is the run's last write)."""
        self.log.info("run " + state, run_id=self.record.run_id, reason=reason or None)
        artifacts = artifacts_of_journal(self.journal.entries)
        runner_log = self.dir.logs / RUNNER_LOG
        if runner_log.exists():
            artifacts.append(self._upload(runner_log, run_key(self.record.run_id, "logs", RUNNER_LOG)))
        self.store.put_bytes(manifest_bytes(self.record.run_id, artifacts), run_key(self.record.run_id, "manifest.json"))
        self.journal.record("run", state=state, reason=reason, artifact_count=len({a.key for a in artifacts}))

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


def _append(log_path: Path, text: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(text + "\n")
