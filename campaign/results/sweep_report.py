"""Results across a sweep (`campaign compare --sweep SWEEP`): one comparison across instance types.

Per item (query × engine × sf): the median warm time at each type and its ratio to the baseline type.
Per type: the campaign's cost at the type's price (the run's hours × the hourly price recorded in
sweep.json × nodes), the cost per item (that cost over the items measured) and the price-performance of
the queries themselves: one pass over every item at its median time, priced per second
(sum of medians × price × nodes), and its ratio to the baseline's. Prices come from the sweep record only:
a report never asks AWS.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from campaign.errors import InputError
from campaign.results.compare import Comparison, compare_groups
from campaign.results.html import ReportRun, build_html
from campaign.results.records import Group, Key, group_records, key_label
from campaign.results.sides import load_run
from campaign.results.stats import geometric_mean
from campaign.run.sweep import SweepRecord
from campaign.store import Store
from campaign.ui.tables import duration_text, format_table


@dataclass
class TypeColumn:
    """One instance type of the sweep, with what its run measured."""

    instance_type: str
    state: str
    run_id: str | None
    nodes: int
    usd_per_hour: float | None
    hours: float | None
    groups: dict[Key, Group] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def median(self, key: Key) -> float:
        group = self.groups.get(key)
        times = (group.warm or group.cold) if group else []
        return float(statistics.median(times)) if times else math.nan

    @property
    def campaign_cost(self) -> float | None:
        if self.hours is None or self.usd_per_hour is None:
            return None
        return self.hours * self.usd_per_hour * self.nodes

    def pass_cost(self, keys: list[Key]) -> float | None:
        """One execution of every item at its median, at the type's price (USD)."""
        medians = [self.median(key) for key in keys]
        if self.usd_per_hour is None or not any(math.isfinite(m) for m in medians):
            return None
        seconds = sum(m for m in medians if math.isfinite(m)) / 1000
        return seconds / 3600 * self.usd_per_hour * self.nodes


@dataclass
class SweepReport:
    sweep_id: str
    baseline: str
    columns: list[TypeColumn]
    keys: list[Key]

    def column(self, instance_type: str) -> TypeColumn:
        return next(c for c in self.columns if c.instance_type == instance_type)

    def ratio(self, column: TypeColumn, key: Key) -> float:
        return column.median(key) / self.column(self.baseline).median(key)

    def geomean_ratio(self, column: TypeColumn) -> float:
        return geometric_mean([self.ratio(column, key) for key in self.keys])


def sweep_report(
    store: Store, record: SweepRecord, baseline: str | None, member_store: Callable[[Any], Store] | None = None
) -> SweepReport:
    """The report of record's members that have results, against baseline (default: the first with results);
    member_store: where a member's run is, when not in store (a sweep of clusters: its cluster's prefix)."""
    columns = [_column(member_store(member) if member_store else store, member) for member in record.members]
    measured = [c.instance_type for c in columns if c.groups]
    if not measured:
        raise InputError(
            f"sweep {record.sweep_id} has no results yet: "
            + "; ".join(f"{c.instance_type} {c.note}" for c in columns)
            + f". `campaign status {record.sweep_id}` shows how far it got."
        )
    if baseline is not None and baseline not in measured:
        raise InputError(
            f"--baseline {baseline}: not a type of sweep {record.sweep_id} with results; "
            f"the types with results: {', '.join(measured)}."
        )
    keys = list(dict.fromkeys(key for c in columns for key in c.groups))
    return SweepReport(record.sweep_id, baseline or measured[0], columns, keys)


def _column(store: Store, member: Any) -> TypeColumn:
    hours = member.duration_s()
    column = TypeColumn(
        member.instance_type,
        member.state,
        member.run_id,
        member.nodes,
        member.usd_per_hour,
        None if hours is None else hours / 3600,
    )
    if member.state != "succeeded" or member.run_id is None:
        column.note = f"no results ({member.state}{': ' + member.reason if member.reason else ''})"
        return column
    run = load_run(store, member.run_id)
    column.records, column.groups = run.records, group_records(run.records)
    return column


def _ms(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "-"


def _usd(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"${value:.{digits}f}"


def item_rows(report: SweepReport) -> list[tuple[str, ...]]:
    measured = [c for c in report.columns if c.groups]
    header = ("item", *(f"{c.instance_type} ms (×{report.baseline})" for c in measured))
    rows: list[tuple[str, ...]] = [header]
    for key in report.keys:
        cells = [f"{_ms(c.median(key))} ({_ratio(report.ratio(c, key))})" for c in measured]
        rows.append((key_label(key), *cells))
    return rows


def _ratio(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "-"


def type_rows(report: SweepReport) -> list[tuple[str, ...]]:
    base_pass = report.column(report.baseline).pass_cost(report.keys)
    rows: list[tuple[str, ...]] = [
        ("type", "state", "run", "nodes", "$/h", "hours", "campaign cost", "per item", "one pass", "vs base", "geomean")
    ]
    for c in report.columns:
        cost, one_pass = c.campaign_cost, c.pass_cost(report.keys)
        per_item = None if cost is None or not c.groups else cost / len(c.groups)
        relative = "-" if one_pass is None or not base_pass else f"{one_pass / base_pass:.2f}"
        rows.append(
            (
                c.instance_type + (" (baseline)" if c.instance_type == report.baseline else ""),
                c.state,
                c.run_id or "-",
                str(c.nodes),
                "-" if c.usd_per_hour is None else f"{c.usd_per_hour:.4f}",
                "-" if c.hours is None else duration_text(c.hours * 3600),
                _usd(cost),
                _usd(per_item, 6),
                _usd(one_pass, 8),
                relative,
                _ratio(report.geomean_ratio(c)) if c.groups else c.note,
            )
        )
    return rows


def as_text(report: SweepReport) -> str:
    lines = [f"sweep {report.sweep_id}: median warm time per item and type, ratio to {report.baseline}", ""]
    lines += format_table(item_rows(report))
    lines += ["", "per type: cost at its hourly price (hours × $/h × nodes), one pass over every item at its medians"]
    lines += format_table(type_rows(report))
    if any(c.usd_per_hour is None for c in report.columns):
        lines.append("(no hourly price recorded for some types: their costs are '-')")
    return "\n".join(lines)


def as_json(report: SweepReport) -> str:
    document = {
        "sweep": report.sweep_id,
        "baseline": report.baseline,
        "items": [
            {"item": key_label(key), "medians_ms": {c.instance_type: _finite(c.median(key)) for c in report.columns}}
            for key in report.keys
        ],
        "types": [
            {
                **{k: v for k, v in asdict(c).items() if k not in ("groups", "records")},
                "campaign_cost_usd": c.campaign_cost,
                "pass_cost_usd": c.pass_cost(report.keys),
                "geomean_ratio": _finite(report.geomean_ratio(c)) if c.groups else None,
            }
            for c in report.columns
        ],
    }
    return json.dumps(document, indent=2)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def comparisons(report: SweepReport) -> list[Comparison]:
    """The baseline against each other type with results, item by item (the existing statistics)."""
    base = report.column(report.baseline)
    return [
        compare_groups(base.groups, c.groups, names=(base.instance_type, c.instance_type), seed=index)
        for index, c in enumerate(c for c in report.columns if c.groups and c is not base)
    ]


def as_html(report: SweepReport) -> str:
    """The sweep's tables, then the existing report: the comparisons and every type's run."""
    tables = "".join(
        "<table>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        + "</table>"
        for rows in (type_rows(report), item_rows(report))
    )
    runs = [ReportRun(c.instance_type, c.records) for c in report.columns if c.groups]
    return build_html(f"Sweep {report.sweep_id}", runs, comparisons(report), intro=f"<section>{tables}</section>")
