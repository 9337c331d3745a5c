"""`campaign ab` with a build stage: every side's checkout gets its own build, once.

When the build stage runs in an A/B run, each side's checkout (run_dir.side(name)) first gets the
prebuilt of that side's commit when the store has a usable one, else the build stage's command runs in
that checkout (with `work_dir` rendered as it). A side whose build output is already there (a resume)
is left alone. Everything goes to the build stage's log; the first failure fails the stage.
"""

from __future__ import annotations

from pathlib import Path

import campaign.prebuilt.artifact as prebuilt
from campaign.agent.build_source import append_to_log
from campaign.agent.context import AgentContext
from campaign.planning.graph import StageRun
from campaign.system.process import ProcessResult, run_logged


def build_sides(ctx: AgentContext, run: StageRun, log: Path, env: dict[str, str]) -> ProcessResult | None:
    """Build (or fetch) each side's checkout; the failed side's result, or None when all have their build."""
    for name, commit in ctx.record.sides.items():
        checkout = ctx.run_dir.side(name)
        if all((checkout / path).exists() for path in run.stage.build_output):
            append_to_log(log, f"campaign: side {name} already has its build in {checkout}")
            continue
        found = prebuilt.lookup(ctx.store, ctx.spec, commit)
        if found.usable:
            try:
                fetched = prebuilt.fetch(ctx.store, commit, found, checkout, ctx.run_dir.root, run.stage.build_output)
            except prebuilt.PrebuiltRejected as err:
                found = prebuilt.Lookup(False, f"the prebuilt was refused: {err}")
            else:
                append_to_log(log, f"campaign: side {name}: fetched {ctx.store.where(fetched.key)}; nothing compiled")
                continue
        append_to_log(log, f"campaign: side {name} ({commit[:12]}): building in {checkout} ({found.reason})")
        command = run.command(
            ctx.spec, run_id=ctx.record.run_id, output_dir=str(ctx.run_dir.outputs), work_dir=str(checkout)
        )
        result = run_logged(command, cwd=checkout, env=env, log_path=log, timeout_s=run.stage.timeout_s)
        if result.timed_out or result.exit_code != 0:
            append_to_log(log, f"campaign: the build of side {name} failed")
            return result
    return None
