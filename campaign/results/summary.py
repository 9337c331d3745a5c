"""The few lines `campaign run` ends with: per results file, each engine's total and geometric mean,
failures and wrong answers, and where the reports are."""

from __future__ import annotations

import math
from pathlib import Path

from campaign.errors import InputError
from campaign.results.records import read_results_file
from campaign.results.tables import run_table


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if math.isfinite(value) else "—"


def run_summary(outputs: Path) -> list[str]:
    lines = []
    for path in sorted(outputs.rglob("*.jsonl")):
        relative = path.relative_to(outputs)
        try:
            table = run_table(read_results_file(path))
        except InputError as err:  # a stage's own format: its results are stored all the same
            lines.append(f"summary {relative}: none ({err}; compare and report need that contract)")
            continue
        if not table.cells:
            continue
        problems = table.problems()
        totals, gmeans = table.totals(), table.gmeans()
        lines.append(
            f"summary {relative}: {len(table.queries)} items; failed {problems['failed']}, "
            f"wrong answers {problems['wrong answers']}"
        )
        lines += [
            f"  {series}: total {_ms(totals[series])}, geometric mean {_ms(gmeans[series])}" for series in table.series
        ]
        reports = sorted(p for p in path.parent.iterdir() if p.suffix in (".html", ".md"))
        lines += [f"  report: {report}" for report in reports]
    return lines
