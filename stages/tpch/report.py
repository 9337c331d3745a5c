"""Render BENCHMARKS-SF<sf>.md from a TPC-H results file (JSON Lines written by bench.py).

    python stages/tpch/report.py RESULTS.jsonl OUT.md

The report depends only on the records, so it can be regenerated at any time, also from the
partial results of an interrupted run (a torn last line is dropped). Timings use the measured
iterations only (never the cold run, iteration 0) that succeeded; the cold run has its own column.
The ratio column is the first engine's median divided by the second's (below 1: the first engine is
faster). The totals row sums medians over the queries every engine completed, so the totals compare
like with like; the geometric-mean row is the geometric mean of the medians (scipy), and CV is the
coefficient of variation of the measured iterations (noisy above 10 %). In an A/B run (records with
`side`) every engine@side is a column group of its own.

Validity of a query: "valid" (every answer matched the shipped reference for this SF), "agree"
(no reference for this SF; every answer matched the first one recorded), "unchecked" (no reference
and a single answer), "INVALID" (some answer differed), "ERROR" (some run raised).
The output is written atomically (temporary file in the same directory, fsync, rename).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

from engines import ENGINE_NAMES

from campaign.results.records import is_cold
from campaign.results.stats import geometric_mean, variation
from campaign.results.tables import NOISY_CV, series_of

USAGE = "usage: python stages/tpch/report.py RESULTS.jsonl OUT.md"


LEGEND = (
    "Times in milliseconds (execution plus full fetch into Arrow), over the measured iterations "
    "that succeeded; the cold run (the first execution, page cache dropped first where allowed, else "
    "lukewarm) is shown on its own and not counted. CV: coefficient of variation of the measured "
    "iterations, marked noisy above 10 %. Ratio below 1: the first engine is faster. "
    "Validity: valid = every answer matched the shipped reference for this scale factor; "
    "agree = no reference for this scale factor, and every answer matched the first one recorded; "
    "unchecked = no reference and only one answer; INVALID = some answer differed; "
    "ERROR = some run raised."
)


class BadResults(Exception):
    """The results file is missing or holds a malformed record."""


def read_records(path: Path) -> list[dict]:
    """All records of a JSON Lines file; a torn (unterminated, unparseable) last line is dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadResults(f"results file {path} does not exist") from None
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):  # last line without a newline: a write cut short
                break
            raise BadResults(f"{path}, line {number}: not a JSON record ({error})") from None
    return records


def engine_order(series: str) -> tuple:
    """duckdb before datafusion (engines.ENGINE_NAMES), whatever order the records came in; sides by name."""
    engine, _, side = series.partition("@")
    known = ENGINE_NAMES.index(engine) if engine in ENGINE_NAMES else len(ENGINE_NAMES)
    return known, engine, side


def unique_in_order(values) -> list:
    return list(dict.fromkeys(values))


def format_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def format_ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return "—"
    return f"{numerator / denominator:.2f}"


def measured_times(records: list[dict], query: str, engine: str) -> list[float]:
    return [
        r["elapsed_ms"]
        for r in records
        if r["query"] == query and series_of(r) == engine and not r["warmup"] and r["ok"]
    ]


def cold_cell(records: list[dict], query: str, engine: str) -> str:
    cold = [r for r in records if r["query"] == query and series_of(r) == engine and r["ok"] and is_cold(r)]
    if not cold:
        return "—"
    kind = "" if cold[0]["cold"] is True else f" ({cold[0]['cold']})"
    return format_ms(cold[0]["elapsed_ms"]) + kind


def cv_cell(times: list[float]) -> str:
    cv = variation(times)
    if math.isnan(cv):
        return "—"
    return f"{100 * cv:.1f} %" + (" noisy" if cv > NOISY_CV else "")


def median_of(times: list[float]) -> float | None:
    return statistics.median(times) if times else None


def query_validity(query_records: list[dict]) -> str:
    flags = []
    if any(r["valid"] is False for r in query_records):
        flags.append("INVALID")
    if any(not r["ok"] for r in query_records):
        flags.append("ERROR")
    if flags:
        return ", ".join(flags)
    if all(r["valid"] is True for r in query_records):
        return "valid"
    engines = {series_of(r) for r in query_records if r["ok"]}
    return "agree" if len(engines) > 1 else "unchecked"


def header_lines(records: list[dict]) -> list[str]:
    first = records[0]
    versions = unique_in_order(f"{r['engine']} {r['engine_version']}" for r in records)
    cold = unique_in_order(str(r.get("cold")) for r in records if is_cold(r))
    cold_text = (
        "page cache dropped before it"
        if cold == ["True"]
        else "lukewarm: the page cache could not be dropped"
        if cold
        else "not recorded as cold"
    )
    iterations = max(r["iteration"] for r in records)
    run_ids = ", ".join(unique_in_order(r["run_id"] for r in records))
    started = min(r["started_at"] for r in records)
    return [
        f"# TPC-H benchmark, scale factor {first['sf']}",
        "",
        f"- Run id: `{run_ids}`",
        f"- Scale factor: {first['sf']}",
        f"- Engines: {', '.join(versions)}",
        f"- Iterations: {iterations} measured per query and engine, after 1 cold run ({cold_text})",
        f"- Host: {first.get('host_cpu', 'unknown CPU')}, {first.get('host_cores', '?')} cores",
        f"- Date: {started[:10]} (first query started {started})",
        "",
    ]


def table_header(engines: list[str]) -> list[str]:
    columns = ["Query"]
    for engine in engines:
        columns += [f"{engine} median ms", f"{engine} min", f"{engine} max", f"{engine} CV", f"{engine} cold ms"]
    if len(engines) == 2:
        columns.append(f"{engines[0]}/{engines[1]}")
    columns.append("Validity")
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def query_row(records: list[dict], query: str, engines: list[str]) -> tuple[str, dict]:
    cells, medians = [query], {}
    for engine in engines:
        times = measured_times(records, query, engine)
        medians[engine] = median_of(times)
        cells += (
            [format_ms(medians[engine])]
            + [format_ms(pick(times)) if times else "—" for pick in (min, max)]
            + [cv_cell(times), cold_cell(records, query, engine)]
        )
    if len(engines) == 2:
        cells.append(format_ratio(medians[engines[0]], medians[engines[1]]))
    cells.append(query_validity([r for r in records if r["query"] == query]))
    return "| " + " | ".join(cells) + " |", medians


def totals_row(all_medians: list[dict], engines: list[str]) -> str:
    complete = [m for m in all_medians if all(m[e] is not None for e in engines)]
    totals = {e: sum(m[e] for m in complete) for e in engines}
    label = "**Total**" if len(complete) == len(all_medians) else f"**Total** ({len(complete)} queries)"
    cells = [label]
    for engine in engines:
        cells += [f"**{format_ms(totals[engine])}**", "", "", "", ""]
    if len(engines) == 2:
        cells.append(f"**{format_ratio(totals[engines[0]], totals[engines[1]])}**")
    cells.append("")
    return "| " + " | ".join(cells) + " |"


def gmean_row(all_medians: list[dict], engines: list[str]) -> str:
    """The geometric mean of each engine's medians (every query it completed)."""
    means = {e: geometric_mean([m[e] for m in all_medians if m[e] is not None]) for e in engines}
    cells = ["**Geometric mean**"]
    for engine in engines:
        cells += [f"**{format_ms(None if math.isnan(means[engine]) else means[engine])}**", "", "", "", ""]
    if len(engines) == 2:
        cells.append(f"**{format_ratio(means[engines[0]], means[engines[1]])}**")
    cells.append("")
    return "| " + " | ".join(cells) + " |"


def problem_lines(records: list[dict]) -> list[str]:
    problems = unique_in_order(
        f"- {r['query']} on {series_of(r)}: "
        + (f"error: {r['error']}" if not r["ok"] else f"wrong answer: {r.get('mismatch')}")
        for r in records
        if not r["ok"] or r["valid"] is False
    )
    return ["", "## Problems", ""] + problems if problems else []


def summary_line(verdicts: list[str]) -> str:
    bad = [v for v in verdicts if "INVALID" in v or "ERROR" in v]
    if not bad:
        return f"Result: all {len(verdicts)} queries completed; none gave a wrong answer."
    return f"Result: **{len(bad)} of {len(verdicts)} queries INVALID or failed** (see Problems)."


def build_report(records: list[dict]) -> str:
    if not records:
        raise BadResults("no records: the results file is empty")
    engines = sorted(unique_in_order(series_of(r) for r in records), key=engine_order)
    queries = sorted(unique_in_order(r["query"] for r in records))  # rounds record them in random order
    rows, all_medians = [], []
    for query in queries:
        row, medians = query_row(records, query, engines)
        rows.append(row)
        all_medians.append(medians)
    verdicts = [query_validity([r for r in records if r["query"] == q]) for q in queries]
    lines = header_lines(records) + [summary_line(verdicts), ""]
    lines += table_header(engines) + rows + [totals_row(all_medians, engines), gmean_row(all_medians, engines)]
    lines += problem_lines(records)
    lines += ["", LEGEND]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(results_path: Path, report_path: Path) -> None:
    write_atomically(report_path, build_report(read_records(results_path)))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        write_report(Path(args[0]), Path(args[1]))
    except BadResults as error:
        print(f"report.py: {error}", file=sys.stderr)
        return 2
    print(f"report written to {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
