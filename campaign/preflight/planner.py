"""Load, validate, expand and preflight a campaign: the plan `campaign plan` shows and `run` executes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from campaign.planning.graph import StageRun, expand
from campaign.planning.plan import Plan, build_plan
from campaign.planning.verdict import Verdict
from campaign.preflight.overlap import overlap_verdict
from campaign.preflight.smoke import smoke_gate
from campaign.spec.load import load_campaign
from campaign.spec.selection import parse_selection
from campaign.spec.variables import with_vars
from campaign.system.git import find_root, head_commit
from campaign.system.host import HostFacts, read_host


def make_plan(
    campaign_file: Path,
    selection_text: str | None,
    *,
    allow_dirty: bool,
    target: str = "local",
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Plan, Path]:
    """Load, validate, expand and preflight (overrides: --var); returns the plan and the repository root."""
    spec = with_vars(load_campaign(campaign_file.resolve()), overrides or {})
    root = find_root(spec.path.parent)
    selection = parse_selection(selection_text or spec.default_selection, spec)
    runs = expand(spec, selection)
    host = read_host() if target == "local" else _instance_stand_in(runs)
    host_check = host_verdict(host, runs) if target == "local" else _instance_host_verdict(runs)
    verdicts = [smoke_gate(spec, runs, root, allow_dirty=allow_dirty), host_check, overlap_verdict(spec, runs, target)]
    plan = build_plan(spec, selection, runs, target=target, commit=head_commit(root), host=host, verdicts=verdicts)
    return plan, root


def host_verdict(host: HostFacts, runs: list[StageRun]) -> Verdict:
    wanted = sorted({flag for run in runs for flag in run.stage.requires.cpu_flags})
    missing = host.missing_flags(tuple(wanted))
    summary = f"{host.cores} cores, {host.cpu_model}"
    if wanted:
        summary += f"; required CPU flags present: {', '.join(f for f in wanted if f not in missing) or 'none'}"
    if missing:
        summary += f"; missing: {', '.join(missing)} (stages that need them are skipped)"
    return Verdict("host", True, summary)


def _instance_stand_in(runs: list[StageRun]) -> HostFacts:
    """On a remote target the stages run on a machine not yet created: plan as if it has every required flag
    (the agent there decides with the real one), never by this machine's CPU."""
    wanted = frozenset(flag for run in runs for flag in run.stage.requires.cpu_flags)
    return HostFacts(cpu_flags=wanted, cpu_model="the instance", cores=0)


def _instance_host_verdict(runs: list[StageRun]) -> Verdict:
    wanted = sorted({flag for run in runs for flag in run.stage.requires.cpu_flags})
    flags = f"; required CPU flags ({', '.join(wanted)}) are checked there" if wanted else ""
    return Verdict(
        "host",
        True,
        f"the stages run on the instance, not on this machine{flags}: a stage whose "
        "requires: it lacks is skipped there, with the reason in the journal",
    )


def refusal_message(plan: Plan) -> str:
    lines = ["preflight refused the run; nothing was started:"]
    for verdict in plan.refusals:
        lines.append(f"  {verdict.check}: {verdict.summary}")
        lines += [f"    {detail}" for detail in verdict.details]
    return "\n".join(lines)
