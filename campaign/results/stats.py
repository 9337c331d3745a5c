"""The statistics of a comparison, all from scipy: Mann-Whitney U for the p-value, a bootstrap
interval of the ratio of medians, Benjamini-Hochberg across the comparisons, and the geometric mean
of the ratios with its own bootstrap interval.

A change is called only when it is significant after the correction (adjusted p < alpha) AND its
ratio lies outside the noise band: above 1 + threshold (slower) or below 1 / (1 + threshold) (faster).
`bench/compare_stats.py` measures the false-positive rate and the power of exactly `decide`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_THRESHOLD = 0.05  # the noise band: changes smaller than 5 % are never called
DEFAULT_ALPHA = 0.05  # the false discovery rate across one comparison's items
CONFIDENCE = 0.95
RESAMPLES = 2000
SLOWER, FASTER, NO_CHANGE = 1, -1, 0


@dataclass(frozen=True)
class Change:
    """contender / base: the ratio of the medians, its interval, and the unadjusted p-value."""

    ratio: float
    low: float
    high: float
    p: float


def _ratio_of_medians(base: np.ndarray, contender: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.median(contender, axis=axis) / np.median(base, axis=axis))


def measure_change(base: list[float], contender: list[float], *, seed: int = 0) -> Change:
    """The change from base to contender (each a list of warm timings, at least one each)."""
    a, b = np.asarray(base, dtype=float), np.asarray(contender, dtype=float)
    ratio = float(_ratio_of_medians(a, b))
    if len(a) < 2 or len(b) < 2:
        return Change(ratio, math.nan, math.nan, 1.0)
    p = float(stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    result = stats.bootstrap(
        (a, b),
        _ratio_of_medians,
        vectorized=True,
        paired=False,
        method="percentile",
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Change(ratio, float(interval.low), float(interval.high), p)


def adjust(pvalues: np.ndarray, axis: int = -1) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values along axis (one comparison's items)."""
    if np.size(pvalues) == 0:
        return np.asarray(pvalues, dtype=float)
    return np.asarray(stats.false_discovery_control(pvalues, axis=axis, method="bh"))


def decide(
    ratios: np.ndarray,
    pvalues: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    axis: int = -1,
) -> np.ndarray:
    """SLOWER, FASTER or NO_CHANGE per item; pvalues are corrected along axis first."""
    ratios = np.asarray(ratios, dtype=float)
    significant = adjust(np.asarray(pvalues, dtype=float), axis=axis) < alpha
    slower = significant & (ratios > 1 + threshold)
    faster = significant & (ratios < 1 / (1 + threshold))
    return np.where(slower, SLOWER, np.where(faster, FASTER, NO_CHANGE))


@dataclass(frozen=True)
class Summary:
    """The geometric mean of the ratios and its bootstrap interval (nan with fewer than two ratios)."""

    gmean: float
    low: float
    high: float
    count: int


def summarize(ratios: list[float], *, seed: int = 0) -> Summary:
    values = np.asarray([r for r in ratios if r > 0 and math.isfinite(r)], dtype=float)
    if len(values) == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    gmean = float(stats.gmean(values))
    if len(values) < 2 or np.all(values == values[0]):
        return Summary(gmean, math.nan, math.nan, len(values))
    result = stats.bootstrap(
        (values,),
        stats.gmean,
        vectorized=True,
        method="percentile",
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        rng=np.random.default_rng(seed),
    )
    return Summary(gmean, float(result.confidence_interval.low), float(result.confidence_interval.high), len(values))


def variation(times: list[float]) -> float:
    """The coefficient of variation (standard deviation / mean, ddof 1); nan with fewer than two times."""
    if len(times) < 2:
        return math.nan
    return float(stats.variation(np.asarray(times, dtype=float), ddof=1))


def geometric_mean(values: list[float]) -> float:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    return float(stats.gmean(positive)) if positive else math.nan
