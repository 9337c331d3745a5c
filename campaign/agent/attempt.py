"""One attempt of one stage run: set aside stale outputs, run the command (or fetch the prebuilt),
check what it produced, upload log and outputs (verified), journal the result."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign.agent.build_source import fetch_or_explain
from campaign.agent.cache_source import CacheSource, fetch_or_generate, store_generated
from campaign.agent.context import AgentContext
from campaign.agent.environment import stage_environment
from campaign.agent.side_builds import build_sides
from campaign.faults import crash_point
from campaign.planning.graph import StageRun
from campaign.run.entries import StageEntry
from campaign.run.incremental import IncrementalSync, prepare_for_resume
from campaign.run.journal import FAILED, INTERRUPTED, RUNNING, SUCCEEDED
from campaign.run.outputdir import make_output_folders, outside_problem
from campaign.store import Artifact
from campaign.system.clock import now_iso
from campaign.system.links import drop_link
from campaign.system.process import ProcessResult, run_logged


@dataclass(frozen=True)
class AttemptResult:
    state: str  # succeeded or failed
    problem: str | None  # one sentence: why it failed
    log_path: Path
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


class Attempt:
    def __init__(self, ctx: AgentContext, run: StageRun, number: int):
        self.ctx, self.run, self.number = ctx, run, number
        self.log_name = f"{run.id}.log" if number == 1 else f"{run.id}.attempt{number}.log"
        self.log_path = ctx.run_dir.logs / self.log_name
        self.notes: dict[str, Any] = {}
        self.cache: CacheSource | None = None  # a cached stage's key, and whether it was fetched

    def execute(self) -> AttemptResult:
        """Run, check, upload, journal. KeyboardInterrupt is journaled as interrupted and re-raised."""
        ctx, run = self.ctx, self.run
        ctx.outputs.set_aside_stale(run, self.number, ctx.log)
        resumed_records = self._prepare_incremental()
        make_output_folders(ctx.run_dir.outputs, list(run.outputs(ctx.spec)))
        started = now_iso()
        ctx.journal.append(
            StageEntry(run.id, RUNNING, attempt=self.number, log=self._log_ref(), resumed_records=resumed_records)
        )
        crash_point("stage.start")
        try:
            result = self._run_process(resumed_records)
        except KeyboardInterrupt:
            ctx.journal.append(
                StageEntry(
                    run.id,
                    INTERRUPTED,
                    attempt=self.number,
                    started_at=started,
                    log=self._log_ref(),
                    reason="interrupted",
                    artifacts=self._store(),
                )
            )
            raise
        crash_point("stage.end")
        return self._finish(result, started)

    def _finish(self, result: ProcessResult, started: str) -> AttemptResult:
        ctx, run = self.ctx, self.run
        problem = self._problem(result)
        artifacts = self._store()
        local_outputs = ctx.outputs.local_fingerprints(run) if not problem and not run.stage.upload else []
        state = FAILED if problem else SUCCEEDED
        cached, stored = self._cache_outcome(problem)
        ctx.journal.append(
            StageEntry(
                run.id,
                state,
                attempt=self.number,
                exit_code=result.exit_code,
                started_at=started,
                duration_s=round(result.duration_s, 3),
                log=self._log_ref(),
                reason=problem or "",
                timed_out=result.timed_out,
                artifacts=artifacts,
                local_outputs=local_outputs,
                checkout_outputs=self._checkout_outputs(problem),
                cached=cached,
                cache_stored=stored,
                notes=self.notes,
            )
        )
        event = ctx.log.error if problem else ctx.log.info
        event(
            "stage " + state,
            stage_run=run.id,
            attempt=self.number,
            duration_s=round(result.duration_s, 3),
            problem=problem,
            log=str(self.log_path),
        )
        return AttemptResult(state, problem, self.log_path, artifacts, dict(self.notes))

    def _run_process(self, resumed_records: int) -> ProcessResult:
        ctx, run = self.ctx, self.run
        env = stage_environment(ctx.record, ctx.spec, run, ctx.run_dir, ctx.outputs, resumed_records=resumed_records)
        instead = self._instead_of_running(env)
        if instead is not None:
            return instead
        command = run.command(
            ctx.spec, run_id=ctx.record.run_id, output_dir=str(ctx.run_dir.outputs), work_dir=str(ctx.run_dir.checkout)
        )
        fanout = env.get("CAMPAIGN_CLUSTER_FANOUT")
        if run.stage.on == "all" and fanout:  # a cluster target's: the command on every node (a log per node)
            env["CAMPAIGN_STAGE_LOG"] = str(self.log_path)
            command = f"{fanout} {shlex.quote(command)}"
        incremental = ctx.outputs.incremental_path(run)
        if incremental is None:
            return run_logged(
                command, cwd=ctx.run_dir.checkout, env=env, log_path=self.log_path, timeout_s=run.stage.timeout_s
            )
        with IncrementalSync(
            incremental, ctx.store, ctx.outputs.key(incremental), interval_s=ctx.record.sync_interval_s
        ) as sync:
            result = run_logged(
                command, cwd=ctx.run_dir.checkout, env=env, log_path=self.log_path, timeout_s=run.stage.timeout_s
            )
        if sync.error:
            ctx.log.warning(
                "incremental upload failed during the stage; the final upload decides",
                stage_run=run.id,
                error=str(sync.error),
            )
        return result

    def _instead_of_running(self, env: dict[str, str]) -> ProcessResult | None:
        """A side's failed build, a verified cache fetch or a prebuilt fetch: what stands for the command."""
        ctx, run = self.ctx, self.run
        if run.stage.build_output and ctx.record.sides:
            failed = build_sides(ctx, run, self.log_path, env)
            if failed is not None:
                return failed
        if run.stage.cache is not None:
            self.cache = fetch_or_generate(ctx, run, self.log_path, env["PATH"])
            return self.cache.fetched
        if run.stage.build_output:
            source = fetch_or_explain(ctx, run, self.log_path)
            self.notes.update(source.notes)
            return source.fetched
        return None

    def _problem(self, result: ProcessResult) -> str | None:
        run, outputs = self.run, self.ctx.outputs
        if result.timed_out:
            return f"timed out after {run.stage.timeout_s:.0f}s; its process group was stopped"
        if result.exit_code != 0:
            return f"exited with code {result.exit_code}"
        outside = outside_problem(self.ctx.run_dir.outputs, list(run.outputs(self.ctx.spec)))
        if outside:
            return outside
        missing = outputs.missing(run)
        if missing:
            return f"exited 0 but did not produce {', '.join(missing)} (declared in produces/incremental)"
        missing = outputs.missing_build_output(run)
        if missing:
            return f"exited 0 but did not produce {', '.join(missing)} in the checkout (declared in build_output)"
        return None

    def _cache_outcome(self, problem: str | None) -> tuple[str | None, str | None]:
        """(the key fetched from, the key stored under) of a cached stage; a miss stores verified outputs only."""
        if self.cache is None or self.cache.key is None or problem:
            return None, None
        if self.cache.fetched is not None:
            return self.cache.key.key, None
        return None, store_generated(self.ctx, self.run, self.log_path, self.cache.key)

    def _checkout_outputs(self, problem: str | None) -> list[str] | None:
        """A build's products in the checkout, which a resume checks (a new machine's checkout lacks them)."""
        return list(self.run.stage.build_output) if not problem and self.run.stage.build_output else None

    def _prepare_incremental(self) -> int:
        incremental = self.ctx.outputs.incremental_path(self.run)
        if incremental is None:
            return 0
        target = drop_link(incremental)
        if target is not None:
            self.ctx.log.warning(
                "removed a symlink where the incremental file belongs (its target untouched)",
                stage_run=self.run.id,
                path=str(incremental),
                target=target,
            )
        return prepare_for_resume(incremental, self.ctx.store, self.ctx.outputs.key(incremental))

    def _store(self) -> list[dict[str, Any]]:
        """Upload the attempt's log and whatever outputs exist (also after a failure: nothing is lost)."""
        ctx = self.ctx
        artifacts = [upload(ctx, self.log_path, ctx.record.keys.log(self.log_name))]
        if self.run.stage.upload:
            artifacts += [upload(ctx, file, ctx.outputs.key(file)) for file in ctx.outputs.files(self.run)]
        return [a.to_dict() for a in artifacts]

    def _log_ref(self) -> str:
        return f"logs/{self.log_name}"


def upload(ctx: AgentContext, path: Path, key: str) -> Artifact:
    crash_point("upload")
    return ctx.store.put_file(path, key)
