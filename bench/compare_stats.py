"""How well `campaign compare` decides: simulated comparisons of 22 queries on synthetic timings.

Each query's timings are lognormal with a coefficient of variation drawn from 5-15 %, and 2 % of the
timings are outliers (1.5-3x slower: a GC pause, a noisy neighbour). Every simulated comparison goes
through the very decision `campaign compare` makes (campaign.results.stats.decide: Mann-Whitney U,
Benjamini-Hochberg across the 22 queries, the 5 % noise band). Prints:
- the A/A false-positive rate per query comparison (goal <= 1 %);
- the power to detect a 10 % slowdown at the default iteration count of campaign.yaml (goal >= 90 %)
  and at 5, 10 and 20 iterations, in two scenarios: every query 10 % slower (a general regression),
  and one query 10 % slower with the other 21 unchanged (Benjamini-Hochberg is strictest then);
- the smallest slowdown detected with 90 % power in each scenario at those iteration counts.
The 5 % noise band bounds the power: a query with a CV of 15 % needs about 40 iterations before its
median ratio reliably clears 1.05 when the truth is 1.10.
Usage: python bench/compare_stats.py [--simulations 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from campaign.results.stats import SLOWER, decide

REPO_ROOT = Path(__file__).resolve().parents[1]
QUERIES = 22
OUTLIER_SHARE, OUTLIER_RANGE = 0.02, (1.5, 3.0)
EFFECTS = np.round(np.arange(1.02, 2.001, 0.01), 2)


def timings(rng: np.random.Generator, cv: np.ndarray, simulations: int, n: int) -> np.ndarray:
    """(simulations, QUERIES, n) lognormal timings with median 100 ms, each query's CV (cv: (simulations,
    QUERIES)), and outliers."""
    sigma = np.sqrt(np.log1p(cv**2))[:, :, None]
    samples = 100.0 * np.exp(sigma * rng.standard_normal((simulations, QUERIES, n)))
    outliers = rng.random(samples.shape) < OUTLIER_SHARE
    return np.where(outliers, samples * rng.uniform(*OUTLIER_RANGE, samples.shape), samples)


def verdicts(rng: np.random.Generator, simulations: int, n: int, slowdown: float, slowed: int = 1) -> np.ndarray:
    """(simulations, QUERIES) verdicts when the first `slowed` queries of the contender are `slowdown` times
    slower and the others unchanged."""
    cv = rng.uniform(0.05, 0.15, (simulations, QUERIES))  # each simulated query its own noise
    base, contender = timings(rng, cv, simulations, n), timings(rng, cv, simulations, n)
    contender[:, :slowed, :] *= slowdown
    ratios = np.median(contender, axis=-1) / np.median(base, axis=-1)
    pvalues = stats.mannwhitneyu(contender, base, alternative="two-sided", axis=-1).pvalue
    return decide(ratios, pvalues, axis=-1)


def power(rng: np.random.Generator, simulations: int, n: int, slowdown: float, slowed: int = 1) -> float:
    """The share of slowed query comparisons called slower."""
    return float(np.mean(verdicts(rng, simulations, n, slowdown, slowed)[:, :slowed] == SLOWER))


def smallest_effect(rng: np.random.Generator, simulations: int, n: int, slowed: int, goal: float = 0.9) -> float | None:
    for effect in EFFECTS:
        if power(rng, simulations, n, float(effect), slowed) >= goal:
            return float(effect)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    default_n = int(yaml.safe_load((REPO_ROOT / "campaign.yaml").read_text())["vars"]["iterations"])
    print(
        f"compare_stats: {args.simulations} simulated comparisons of {QUERIES} queries per figure; "
        "lognormal timings, CV 5-15 %, 2 % outliers 1.5-3x"
    )
    for n in sorted({5, 10, 20, default_n}):
        false_positive = float(np.mean(verdicts(rng, args.simulations, n, 1.0) != 0))
        mark = " (the default)" if n == default_n else ""
        print(f"  {n:>2} iterations{mark}: A/A false positives per query comparison {false_positive:.3%} (goal <= 1 %)")
        for slowed, what in ((QUERIES, "every query slowed"), (1, "one query slowed, 21 unchanged")):
            detected = power(rng, args.simulations, n, 1.10, slowed)
            smallest = smallest_effect(rng, args.simulations, n, slowed)
            found = "none up to 2x" if smallest is None else f"{smallest - 1:.0%}"
            print(
                f"      {what}: power for a 10 % slowdown {detected:.1%} (goal >= 90 %); "
                f"smallest slowdown detected with 90 % power {found}"
            )


if __name__ == "__main__":
    main()
