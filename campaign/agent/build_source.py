"""The build stage fetches the commit's prebuilt when the store has a usable one; else it builds here,
and says so loudly (in the runner's events and the stage's log) with how to avoid it next time."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.filesize import decimal

import campaign.prebuilt.artifact as prebuilt
from campaign.agent.context import AgentContext
from campaign.planning.graph import StageRun
from campaign.system.process import ProcessResult
from campaign.ui.tables import duration_text

BANNER = "!" * 78


@dataclass(frozen=True)
class BuildSource:
    """What the build stage's attempt did instead of (or before) compiling, for its journal entry."""

    fetched: ProcessResult | None  # the "process" of a fetch; None: the command builds
    notes: dict[str, Any] = field(default_factory=dict)


def fetch_or_explain(ctx: AgentContext, run: StageRun, log_path: Path) -> BuildSource:
    found = prebuilt.lookup(ctx.store, ctx.spec, ctx.record.commit, dirty=ctx.record.dirty)
    if found.usable and ctx.record.commit is not None:
        try:
            fetched = prebuilt.fetch(
                ctx.store, ctx.record.commit, found, ctx.run_dir.checkout, ctx.run_dir.root, run.stage.build_output
            )
        except prebuilt.PrebuiltRejected as err:
            found = prebuilt.Lookup(False, f"the prebuilt was refused: {err}")
        else:
            append_to_log(
                log_path,
                f"campaign: fetched {ctx.store.where(fetched.key)} "
                f"({decimal(fetched.size)}, sha256 {fetched.sha256} verified) and extracted "
                f"{fetched.members} entries in {fetched.seconds:.1f}s; nothing was compiled.",
            )
            ctx.log.info(
                "build fetched from the prebuilt; nothing compiled",
                stage_run=run.id,
                key=fetched.key,
                sha256=fetched.sha256,
                seconds=round(fetched.seconds, 3),
            )
            notes = {
                "build_source": "prebuilt",
                "prebuilt": {"key": fetched.key, "size": fetched.size, "sha256": fetched.sha256},
            }
            return BuildSource(ProcessResult(0, False, fetched.seconds), notes)
    warning = building_here_warning(ctx, run, found)
    append_to_log(log_path, "campaign: " + warning.replace("\n", "\ncampaign: "))
    ctx.log.warning(f"{BANNER}\n{warning}\n{BANNER}", stage_run=run.id, reason=found.reason)
    return BuildSource(None, {"build_source": "built here", "prebuilt_unusable": found.reason})


def building_here_warning(ctx: AgentContext, run: StageRun, found: prebuilt.Lookup) -> str:
    latest = prebuilt.last_prebuild(ctx.store)
    took = (
        f"The last prebuild in this store (commit {latest[0]}) took {duration_text(latest[1])} on a CI runner"
        if latest
        else "No prebuild in this store to time it by; a cold Rust workspace build takes minutes"
    )
    limit = f" (stage timeout {duration_text(run.stage.timeout_s)})" if run.stage.timeout_s else ""
    command = run.command(
        ctx.spec, run_id=ctx.record.run_id, output_dir=str(ctx.run_dir.outputs), work_dir=str(ctx.run_dir.checkout)
    )
    if "cargo " in command and shutil.which("cargo") is None:
        took += " (and cargo is not on PATH here: the build will fail; install Rust on this machine)"
    return (
        f"BUILDING ON THIS MACHINE: {found.reason}.\n"
        f"{took}; this run waits for it{limit}, on paid time when it is an instance.\n"
        f"To fetch a build in seconds instead: push the commit to main so the prebuild workflow stores it, "
        f"or run `campaign prebuild --store {ctx.record.store}` in the repository at commit "
        f"{(ctx.record.commit or '?')[:12]}."
    )


def append_to_log(log_path: Path, text: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(text + "\n")
