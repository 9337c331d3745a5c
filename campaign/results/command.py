"""`campaign compare`, `campaign report` and the comparison an `ab` run stores: sides in, comparisons out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from campaign.errors import InputError
from campaign.results.compare import Comparison, compare_groups
from campaign.results.html import ReportRun, build_html
from campaign.results.records import group_records
from campaign.results.render import as_json
from campaign.results.sides import Side, host_differences, load_run, load_side, split_side
from campaign.results.stats import DEFAULT_ALPHA, DEFAULT_THRESHOLD
from campaign.run.keys import RunKeys
from campaign.store import Store


@dataclass(frozen=True)
class CompareOptions:
    by: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA


def ordered_split(side: Side, by: str) -> list[Side]:
    """split_side, an `ab` run's sides in the order the run named them (base first)."""
    parts = split_side(side, by)
    if by == "side" and side.sides:
        rank = {name: index for index, name in enumerate(side.sides)}
        parts.sort(key=lambda part: rank.get(part.name, len(rank)))
    return parts


def load_sides(texts: list[str], default_store: Callable[[], str]) -> list[Side]:
    return [load_side(text, default_store) for text in texts]


def sides_to_compare(loaded: list[Side], by: str | None) -> tuple[list[Side], str]:
    """The sides (base first) and the field they were split by ('' when they are separate runs or files)."""
    if by is None and len(loaded) == 1 and loaded[0].sides:
        by = "side"  # an `ab` run compares its own sides
    if by:
        if len(loaded) != 1:
            raise InputError(f"--by {by} compares within one run or file; got {len(loaded)} sides.")
        return ordered_split(loaded[0], by), by
    if len(loaded) < 2:
        raise InputError(
            "compare needs a BASE and at least one CONTENDER (run ids or .jsonl files), "
            "or one run with --by engine (or an `ab` run)."
        )
    return loaded, ""


def compare_sides(sides: list[Side], by: str, options: CompareOptions) -> list[Comparison]:
    base, contenders = sides[0], sides[1:]
    comparisons = []
    for index, contender in enumerate(contenders):
        comparison = compare_groups(
            group_records(base.records, without=by),
            group_records(contender.records, without=by),
            names=(base.name, contender.name),
            threshold=options.threshold,
            alpha=options.alpha,
            seed=index,
        )
        if not by:
            comparison.warnings = host_differences(base, contender) + drift_warning(comparison)
        comparisons.append(comparison)
    return comparisons


def drift_warning(comparison: Comparison) -> list[str]:
    """Separate runs whose items moved both ways: more likely the machine than the code (one warning)."""
    counts = comparison.counts
    slower, faster = counts.get("slower", 0), counts.get("faster", 0)
    if min(slower, faster) < 2 or slower + faster < len(comparison.rows) / 10:
        return []
    return [
        f"{slower} items slower and {faster} faster at once: the machine's conditions likely differed between "
        "the runs (load, frequency, neighbours). `campaign ab BASE_REV CONTENDER_REV` interleaves both sides "
        "in one run, so such drift lands on both alike."
    ]


def report_html(texts: list[str], default_store: Callable[[], str], options: CompareOptions) -> str:
    """`campaign report`: every run or file named, and their comparison when there are several (or sides)."""
    loaded = load_sides(texts, default_store)
    comparisons: list[Comparison] = []
    if len(loaded) > 1 or options.by or loaded[0].sides:
        sides, by = sides_to_compare(loaded, options.by)
        comparisons = compare_sides(sides, by, options)
    runs = [ReportRun(side.name, side.records, side.host) for side in loaded]
    return build_html(f"Benchmark report: {', '.join(side.name for side in loaded)}", runs, comparisons)


def ab_comparisons(store: Store, run_id: str) -> list[Comparison]:
    """An `ab` run's comparison of its sides (base first), from its results in the store."""
    return compare_sides(ordered_split(load_run(store, run_id), "side"), "side", CompareOptions())


def store_ab_comparison(store: Store, run_id: str) -> list[Comparison]:
    """An `ab` run's comparison of its sides, stored with the run (comparison.json and comparison.html):
    what the agent does when an `ab` run succeeds, on any target."""
    run = load_run(store, run_id)
    comparisons = compare_sides(ordered_split(run, "side"), "side", CompareOptions())
    keys = RunKeys(run_id)
    store.put_bytes(as_json(comparisons).encode("utf-8"), keys.comparison)
    page = build_html(f"A/B run {run_id}", [ReportRun(run.name, run.records, run.host)], comparisons)
    store.put_bytes(page.encode("utf-8"), keys.comparison_html)
    return comparisons
