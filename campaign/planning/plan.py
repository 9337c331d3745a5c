"""The plan: ordered stage runs, each with what will happen and why, plus preflight verdicts.

`campaign plan` prints it; `campaign run` executes exactly it. Building it is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from campaign.planning.graph import StageRun
from campaign.planning.verdict import Verdict
from campaign.spec.model import CampaignSpec
from campaign.system.host import HostFacts
from campaign.ui.tables import format_table

RUN, SKIP, DONE = "run", "skip", "done"


class BuildSourceLookup(Protocol):
    """What a prebuilt lookup says (campaign.prebuilt.artifact.Lookup): usable, and why in one sentence."""

    @property
    def usable(self) -> bool: ...

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class PlannedRun:
    run: StageRun
    action: str  # RUN, SKIP or DONE (a resumed run's stage run whose outputs still verify)
    reason: str
    redo: str = ""  # why a stage run that succeeded before runs again
    source: str = ""  # the build stage: "fetch prebuilt …" or "build here …"
    cache: str = ""  # a cached stage: "cache hit …" or "generate …"

    @property
    def id(self) -> str:
        return self.run.id


@dataclass(frozen=True)
class Plan:
    spec: CampaignSpec
    selection: tuple[str, ...]
    target: str
    commit: str | None
    runs: tuple[PlannedRun, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def refusals(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.refuses]

    @property
    def dirty(self) -> bool:
        """The user chose to run uncommitted files (--allow-dirty overrode the smoke gate)."""
        return any(v.overridden for v in self.verdicts)

    @property
    def selection_text(self) -> str:
        return ",".join(f"sf{sf}" for sf in self.selection)

    def to_dict(self) -> dict:
        return {
            "campaign": self.spec.name,
            "campaign_file": str(self.spec.path),
            "campaign_digest": self.spec.digest,
            "selection": self.selection_text,
            "target": self.target,
            "commit": self.commit,
            "vars": self.spec.vars,
            "vars_overridden": list(self.spec.overridden),
            "stage_runs": [_planned_dict(p, self.spec) for p in self.runs],
            "preflight": [v.to_dict() for v in self.verdicts],
            "refused": bool(self.refusals),
        }


def build_plan(
    spec: CampaignSpec,
    selection: tuple[str, ...],
    runs: list[StageRun],
    *,
    target: str,
    commit: str | None,
    host: HostFacts,
    verdicts: list[Verdict],
    done: dict[str, str] | None = None,
    redo: dict[str, str] | None = None,
) -> Plan:
    """done: stage runs a resumed run trusts (-> why); redo: succeeded ones that failed verification (-> why)."""
    done, redo = done or {}, redo or {}
    decided: dict[str, PlannedRun] = {}
    for run in runs:
        if run.id in done:
            decided[run.id] = PlannedRun(run, DONE, done[run.id])
        else:
            decided[run.id] = _decide(run, host, decided, redo.get(run.id, ""))
    return Plan(
        spec=spec,
        selection=selection,
        target=target,
        commit=commit,
        runs=tuple(decided.values()),
        verdicts=tuple(verdicts),
    )


def _decide(run: StageRun, host: HostFacts, decided: dict[str, PlannedRun], redo: str) -> PlannedRun:
    missing = host.missing_flags(run.stage.requires.cpu_flags)
    if missing:
        return PlannedRun(run, SKIP, f"host lacks CPU flag(s) {', '.join(missing)} required by {run.stage.name}")
    skipped = [need for need in run.needs if decided[need].action == SKIP]
    if skipped:
        return PlannedRun(run, SKIP, f"needs {', '.join(skipped)}, which will be skipped")
    if redo:
        return PlannedRun(run, RUN, f"runs again: {redo}", redo=redo)
    return PlannedRun(run, RUN, "not run yet")


def _planned_dict(planned: PlannedRun, spec: CampaignSpec) -> dict:
    run = planned.run
    return {
        "id": run.id,
        "stage": run.stage.name,
        "sf": run.sf,
        "kind": run.stage.kind,
        "needs": list(run.needs),
        "outputs": list(run.outputs(spec)),
        "action": planned.action,
        "reason": planned.reason,
        "timeout_s": run.stage.timeout_s,
        "retries": run.stage.retries,
        **({"build": planned.source} if planned.source else {}),
        **({"cache": planned.cache} if planned.cache else {}),
        **({"features": list(run.stage.features)} if run.stage.features else {}),
    }


def format_plan(plan: Plan) -> str:
    """The plan as text for a terminal: a header, one row per stage run, the preflight verdicts."""
    commit = (plan.commit or "no commit")[:12]
    lines = [
        f"campaign {plan.spec.name} ({plan.spec.path.name}) · selection {plan.selection_text} · "
        f"target {plan.target} · commit {commit}"
    ]
    if plan.spec.vars:
        shown = (
            f"{name}={value}" + (" (--var)" if name in plan.spec.overridden else "")
            for name, value in plan.spec.vars.items()
        )
        lines.append("vars: " + ", ".join(shown))
    lines.append("")
    rows: list[tuple[str, ...]] = [("#", "stage run", "kind", "action", "needs", "outputs")]
    rows += [_row(plan, index, planned) for index, planned in enumerate(plan.runs, 1)]
    lines += format_table(rows)
    if plan.verdicts:
        lines += ["", "preflight:"]
    for verdict in plan.verdicts:
        mark = "WARN" if verdict.warning or verdict.overridden else ("ok  " if verdict.ok else "FAIL")
        lines.append(f"  {mark} {verdict.check}: {verdict.summary}")
        lines += [f"       {detail}" for detail in verdict.details]
    return "\n".join(lines)


def _row(plan: Plan, index: int, planned: PlannedRun) -> tuple[str, ...]:
    run = planned.run
    action = {RUN: "run", SKIP: f"skip: {planned.reason}", DONE: planned.reason}[planned.action]
    if planned.redo:
        action = planned.reason
    if (planned.source or planned.cache) and planned.action == RUN:
        action = planned.source or planned.cache
    needs, outputs = ", ".join(run.needs) or "-", ", ".join(run.outputs(plan.spec)) or "-"
    return (str(index), run.id, run.stage.kind, action, needs, outputs)


def with_cache(plan: Plan, decisions: dict[str, str]) -> Plan:
    """The plan, saying for each cached stage run (id -> decision) whether it fetches a cache entry or generates."""
    runs = tuple(replace(p, cache=decisions[p.id]) if p.id in decisions and p.action == RUN else p for p in plan.runs)
    return replace(plan, runs=runs)


def with_build_source(plan: Plan, found: BuildSourceLookup, store_where: str) -> Plan:
    """The plan, saying whether its build stage fetches the commit's prebuilt or builds (prebuilt.Lookup found)."""
    stage = plan.spec.build_stage
    if stage is None:
        return plan
    source = "fetch prebuilt (preflight: prebuilt)" if found.usable else "build here (preflight: prebuilt)"
    runs = tuple(
        replace(p, source=source) if p.run.stage.name == stage.name and p.action == RUN else p for p in plan.runs
    )
    if found.usable:
        verdict = Verdict(
            "prebuilt",
            True,
            f"the build stage '{stage.name}' fetches {found.reason} instead of "
            "compiling (checked against its sha256 when fetched)",
        )
    else:
        how = (
            f"`campaign prebuild --store {store_where}` (or the prebuild workflow on a push to main) stores it; "
            "runs then fetch it in seconds"
        )
        verdict = Verdict(
            "prebuilt",
            True,
            f"the build stage '{stage.name}' compiles on the run's machine: {found.reason}",
            (how,),
            warning=True,
        )
    return replace(plan, runs=runs, verdicts=plan.verdicts + (verdict,))
