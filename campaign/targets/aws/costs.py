"""The sweep's cost before paying: price × nodes × hours per instance type, and in total.

Expected hours come from the last finished run of this campaign in the store (its journal's start and end),
else max_hours; the worst case is always max_hours (the watchdog powers the instance off then). `--max-cost`
refuses a sweep whose worst case exceeds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from campaign.errors import CampaignError
from campaign.planning.verdict import Verdict
from campaign.run.inspection import run_status
from campaign.run.keys import RUNS_PREFIX
from campaign.run.record import read_record
from campaign.targets.aws.pricing import Price

CHECK = "cost"
LOOK_BACK = 20  # the newest runs read for the last finished one of the campaign


@dataclass(frozen=True)
class Hours:
    expected: float
    worst: float
    source: str  # where expected comes from


@dataclass(frozen=True)
class TypeCost:
    price: Price
    nodes: int
    hours: Hours

    @property
    def expected_usd(self) -> float:
        return self.price.usd_per_hour * self.nodes * self.hours.expected

    @property
    def worst_usd(self) -> float:
        return self.price.usd_per_hour * self.nodes * self.hours.worst

    def to_dict(self) -> dict[str, Any]:
        known = self.price.known
        return {
            "instance_type": self.price.instance_type,
            "nodes": self.nodes,
            "usd_per_hour": self.price.usd_per_hour if known else None,
            "price_source": self.price.source,
            "price_as_of": self.price.as_of,
            "expected_hours": self.hours.expected,
            "expected_usd": round(self.expected_usd, 2) if known else None,
            "worst_case_usd": round(self.worst_usd, 2) if known else None,
        }


def expected_hours(store: Any, campaign: str, max_hours: float) -> Hours:
    """From the newest succeeded run of campaign among the last LOOK_BACK runs in store, else max_hours."""
    if store is not None:
        try:
            for run_id in sorted(store.list_children(RUNS_PREFIX), reverse=True)[:LOOK_BACK]:
                hours = _finished_hours(store, run_id, campaign)
                if hours is not None:
                    return Hours(min(hours, max_hours), max_hours, f"the last finished run, {run_id}")
        except CampaignError as err:
            return Hours(max_hours, max_hours, f"max_hours (the store could not be read: {err})")
    return Hours(max_hours, max_hours, "max_hours (no finished run of this campaign in the store)")


def _finished_hours(store: Any, run_id: str, campaign: str) -> float | None:
    try:
        if read_record(store, run_id).campaign != campaign:
            return None
        status = run_status(store, run_id)
    except CampaignError:  # a damaged or half-written run: the next one may do
        return None
    if status.state != "succeeded" or not status.started_at or not status.ended_at:
        return None
    seconds = (datetime.fromisoformat(status.ended_at) - datetime.fromisoformat(status.started_at)).total_seconds()
    return max(seconds, 0.0) / 3600


def cost_verdict(costs: list[TypeCost], max_cost: float | None) -> Verdict:
    """ok with the totals; refused when the worst case exceeds max_cost; WARN for a price not known."""
    unknown = [c.price for c in costs if not c.price.known]
    known = [c for c in costs if c.price.known]
    expected = sum(c.expected_usd for c in known)
    worst = sum(c.worst_usd for c in known)
    summary = f"expected ${expected:.2f}, worst case ${worst:.2f} (every type for max_hours)"
    if max_cost is not None and worst > max_cost:
        dearest = max(known, key=lambda c: c.worst_usd)
        return Verdict(
            CHECK,
            False,
            f"the sweep's worst case ${worst:.2f} exceeds --max-cost ${max_cost:.2f} "
            f"(dearest: {dearest.nodes} × {dearest.price.instance_type}, ${dearest.worst_usd:.2f})",
            ("fix: fewer or smaller types, fewer nodes, a lower max_hours, or a higher --max-cost",),
        )
    if unknown:
        names = ", ".join(p.instance_type for p in unknown)
        limit = f"; --max-cost ${max_cost:.2f} covers only the priced types" if max_cost is not None else ""
        return Verdict(CHECK, True, f"{summary}; no price for {names}: {unknown[0].source}{limit}", warning=True)
    limit = f", within --max-cost ${max_cost:.2f}" if max_cost is not None else ""
    return Verdict(CHECK, True, summary + limit)


def cost_lines(costs: list[TypeCost]) -> list[str]:
    """The plan's cost lines: one per type, then the total."""
    if not costs:
        return []
    hours = costs[0].hours
    lines = [f"  cost (expected {hours.expected:.2f} h from {hours.source}; worst case {hours.worst:g} h):"]
    for c in costs:
        if not c.price.known:
            lines.append(f"    {c.nodes} × {c.price.instance_type}: price unknown ({c.price.source})")
            continue
        where = c.price.source.rsplit("; ", 1)[-1]  # the why before it is said once, below
        lines.append(
            f"    {c.nodes} × {c.price.instance_type} at ${c.price.usd_per_hour:.4f}/h: expected "
            f"${c.expected_usd:.2f}, worst case ${c.worst_usd:.2f} ({where}"
            + (f", {c.price.as_of})" if c.price.as_of else ")")
        )
    known = [c for c in costs if c.price.known]
    lines.append(
        f"    total: expected ${sum(c.expected_usd for c in known):.2f}, "
        f"worst case ${sum(c.worst_usd for c in known):.2f}" + ("" if len(known) == len(costs) else " (priced types)")
    )
    whys = dict.fromkeys(c.price.source.rsplit("; ", 1)[0] for c in known if "; " in c.price.source)
    return lines + [f"    prices: {why}" for why in whys]


def cost_json(costs: list[TypeCost]) -> dict[str, Any]:
    known = [c for c in costs if c.price.known]
    return {
        "per_type": [c.to_dict() for c in costs],
        "expected_usd": round(sum(c.expected_usd for c in known), 2),
        "worst_case_usd": round(sum(c.worst_usd for c in known), 2),
        "all_priced": len(known) == len(costs),
    }
