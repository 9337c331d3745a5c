"""Per-run figures the reports share (Markdown, HTML, the run summary): per engine and query the warm
median, spread (CV), cold run and validity; per engine the total and geometric mean of the medians."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from campaign.results.records import is_cold, is_warm_timing, item_of
from campaign.results.stats import geometric_mean, variation

NOISY_CV = 0.10  # a query whose warm timings vary more than this is marked noisy


def series_of(record: dict[str, Any]) -> str:
    """What one box, bar or column stands for: the engine, with the A/B side when there is one."""
    name = str(record.get("engine") or "result")
    if record.get("side"):
        name += f"@{record['side']}"
    return name


@dataclass
class Cell:
    warm: list[float] = field(default_factory=list)
    cold: float = math.nan
    cold_kind: str = ""
    failed: bool = False
    invalid: bool = False
    checked: bool = False  # some answer was compared with a reference (valid true)

    @property
    def median(self) -> float:
        return float(np.median(self.warm)) if self.warm else math.nan

    @property
    def cv(self) -> float:
        return variation(self.warm)

    @property
    def validity(self) -> str:
        if self.failed or self.invalid:
            return ", ".join(word for word, bad in (("INVALID", self.invalid), ("ERROR", self.failed)) if bad)
        return "valid" if self.checked else "ok"


@dataclass
class RunTable:
    series: list[str]
    queries: list[str]
    cells: dict[tuple[str, str], Cell]

    def totals(self) -> dict[str, float]:
        """Per series the sum of warm medians over the queries every series completed (like with like)."""
        complete = [q for q in self.queries if all(math.isfinite(self.cell(s, q).median) for s in self.series)]
        return {s: sum(self.cell(s, q).median for q in complete) for s in self.series}

    def gmeans(self) -> dict[str, float]:
        return {s: geometric_mean([self.cell(s, q).median for q in self.queries]) for s in self.series}

    def cell(self, series: str, query: str) -> Cell:
        return self.cells.get((series, query), Cell())

    def problems(self) -> dict[str, int]:
        return {
            "failed": sum(c.failed for c in self.cells.values()),
            "wrong answers": sum(c.invalid for c in self.cells.values()),
        }


def run_table(records: Iterable[dict[str, Any]]) -> RunTable:
    cells: dict[tuple[str, str], Cell] = {}
    for record in records:
        cell = cells.setdefault((series_of(record), item_of(record)), Cell())
        if not record.get("ok"):
            cell.failed = True
            continue
        cell.invalid = cell.invalid or record.get("valid") is False
        cell.checked = cell.checked or record.get("valid") is True
        if is_cold(record):
            cell.cold = float(record["elapsed_ms"])
            cell.cold_kind = "cold" if record["cold"] is True else str(record["cold"])
        elif is_warm_timing(record):
            cell.warm.append(float(record["elapsed_ms"]))
    series = sorted({s for s, _ in cells})  # an A/B run records in random order: sorted reads better
    queries = sorted({q for _, q in cells})
    return RunTable(series=series, queries=queries, cells=cells)
