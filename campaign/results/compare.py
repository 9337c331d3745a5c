"""One comparison: a base side against a contender side, item by item (query × engine × sf).

Each item gets a verdict: slower / faster (significant after Benjamini-Hochberg and outside the noise
band, see stats.py), no change, newly failing, fixed, failing (on both sides), missing (on one side),
answer changed (the answer digests differ), or too few (fewer than two warm timings on a side).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from campaign.results.records import Group, Key, key_label
from campaign.results.stats import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    FASTER,
    SLOWER,
    Summary,
    adjust,
    decide,
    measure_change,
    summarize,
)

SLOWER_V, FASTER_V, SAME_V = "slower", "faster", "no change"
VERDICTS = (SLOWER_V, FASTER_V, SAME_V, "newly failing", "fixed", "failing", "missing", "answer changed", "too few")


@dataclass
class Row:
    key: Key
    label: str
    verdict: str = SAME_V
    base_median: float = math.nan
    contender_median: float = math.nan
    base_n: int = 0
    contender_n: int = 0
    ratio: float = math.nan
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    p_adjusted: float = math.nan
    base_cold: float = math.nan
    contender_cold: float = math.nan
    note: str = ""


@dataclass
class Comparison:
    base: str
    contender: str
    rows: list[Row]
    summary: Summary
    threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        found = {verdict: sum(row.verdict == verdict for row in self.rows) for verdict in VERDICTS}
        return {verdict: count for verdict, count in found.items() if count}

    @property
    def regressions(self) -> list[Row]:
        return [row for row in self.rows if row.verdict in (SLOWER_V, "newly failing")]

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        rows = [
            {k: clean(v) for k, v in asdict(row).items() if k != "key"}
            | dict(zip(("sf", "item", "engine"), row.key, strict=True))
            for row in self.rows
        ]
        return {
            "base": self.base,
            "contender": self.contender,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "summary": {k: clean(v) for k, v in asdict(self.summary).items()},
            "counts": self.counts,
            "warnings": self.warnings,
            "rows": rows,
        }


def _median(times: list[float]) -> float:
    return float(np.median(times)) if times else math.nan


def _first_verdict(base: Group | None, contender: Group | None) -> str:
    """The verdicts that need no statistics; '' when the timings decide."""
    if base is None or contender is None:
        return "missing"
    if contender.failing and not base.failing:
        return "newly failing"
    if base.failing and not contender.failing:
        return "fixed"
    if base.failing:
        return "failing"
    if base.digests and contender.digests and base.digests != contender.digests:
        return "answer changed"
    if len(base.warm) < 2 or len(contender.warm) < 2:
        return "too few"
    return ""


def _row(key: Key, base: Group | None, contender: Group | None, seed: int) -> Row:
    row = Row(key=key, label=key_label(key), verdict=_first_verdict(base, contender))
    if base is None or contender is None:
        row.note = "only in the contender" if base is None else "only in the base"
        return row
    row.base_median, row.contender_median = _median(base.warm), _median(contender.warm)
    row.base_n, row.contender_n = len(base.warm), len(contender.warm)
    row.base_cold, row.contender_cold = _median(base.cold), _median(contender.cold)
    failing = contender if contender.failing else base
    if failing.failing:
        row.note = failing.errors[0][:200]
    if base.warm and contender.warm:
        change = measure_change(base.warm, contender.warm, seed=seed)
        row.ratio, row.low, row.high, row.p = change.ratio, change.low, change.high, change.p
    return row


def compare_groups(
    base: dict[Key, Group],
    contender: dict[Key, Group],
    *,
    names: tuple[str, str],
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Comparison:
    keys = list(dict.fromkeys([*base, *contender]))
    rows = [_row(key, base.get(key), contender.get(key), seed + index) for index, key in enumerate(keys)]
    tested = [row for row in rows if not row.verdict]
    if tested:
        ratios = np.array([row.ratio for row in tested])
        pvalues = np.array([row.p for row in tested])
        adjusted = adjust(pvalues)
        calls = decide(ratios, pvalues, threshold=threshold, alpha=alpha)
        for row, p_adjusted, call in zip(tested, adjusted, calls, strict=True):
            row.p_adjusted = float(p_adjusted)
            row.verdict = {SLOWER: SLOWER_V, FASTER: FASTER_V}.get(int(call), SAME_V)
    summary = summarize([row.ratio for row in rows if row.verdict in (SLOWER_V, FASTER_V, SAME_V)], seed=seed)
    return Comparison(base=names[0], contender=names[1], rows=rows, summary=summary, threshold=threshold, alpha=alpha)
