"""A comparison as text: a terminal table, Markdown, or JSON."""

from __future__ import annotations

import json
import math

from campaign.results.compare import Comparison, Row
from campaign.ui.tables import format_table

HEADERS = ("item", "base ms", "contender ms", "ratio", "95 % interval", "p (adj.)", "cold ratio", "verdict")


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "—"


def _cells(row: Row) -> tuple[str, ...]:
    cold = row.contender_cold / row.base_cold if row.base_cold and math.isfinite(row.base_cold) else math.nan
    verdict = row.verdict.upper() if row.verdict in ("slower", "faster", "newly failing") else row.verdict
    return (
        row.label,
        _fmt(row.base_median, ",.1f"),
        _fmt(row.contender_median, ",.1f"),
        _fmt(row.ratio, ".3f"),
        f"{_fmt(row.low, '.3f')}–{_fmt(row.high, '.3f')}",
        _fmt(row.p_adjusted, ".4f"),
        _fmt(cold, ".2f"),
        verdict + (f" ({row.note})" if row.note else ""),
    )


def summary_line(comparison: Comparison) -> str:
    summary = comparison.summary
    counts = ", ".join(f"{count} {verdict}" for verdict, count in comparison.counts.items()) or "nothing compared"
    return (
        f"{comparison.contender} vs {comparison.base}: geometric mean of the ratios "
        f"{_fmt(summary.gmean, '.3f')} (95 % interval {_fmt(summary.low, '.3f')}–{_fmt(summary.high, '.3f')}, "
        f"{summary.count} items); {counts}. A change is called when Benjamini-Hochberg adjusted p < "
        f"{comparison.alpha} and the ratio is outside ±{comparison.threshold:.0%}."
    )


def as_text(comparison: Comparison) -> str:
    lines = [f"warning: the sides differ: {warning}" for warning in comparison.warnings]
    lines += format_table([HEADERS, *(_cells(row) for row in comparison.rows)])
    return "\n".join([*lines, "", summary_line(comparison)])


def as_markdown(comparison: Comparison) -> str:
    lines = [f"## {comparison.contender} vs {comparison.base}", ""]
    lines += [f"> warning: the sides differ: {warning}" for warning in comparison.warnings]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |" for row in comparison.rows]
    return "\n".join([*lines, "", summary_line(comparison), ""])


def as_json(comparisons: list[Comparison]) -> str:
    return json.dumps({"comparisons": [c.to_dict() for c in comparisons]}, indent=2)
