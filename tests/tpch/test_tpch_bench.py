"""bench.py end to end at SF 0.01: records, validation, report, and refusals before any write."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tpch_helpers import QUERIES, QUERIES_DIR, STAGE_DIR, TABLES, run_bench, stage_env

RECORD_FIELDS = {
    "run_id": str,
    "engine": str,
    "engine_version": str,
    "sf": str,
    "query": str,
    "iteration": int,
    "warmup": bool,
    "elapsed_ms": float,
    "rows": int,
    "answer_digest": str,
    "ok": bool,
    "error": type(None),
    "valid": bool,
    "mismatch": type(None),
    "started_at": str,
    "host_cpu": str,
    "host_cores": int,
}


def bench_args(data_dir: Path, out: Path, *extra: str, sf: str = "0.01", iterations: int = 1):
    return [
        "--sf",
        sf,
        "--data-dir",
        str(data_dir),
        "--results",
        str(out / "results" / f"sf{sf}" / "tpch.jsonl"),
        "--report",
        str(out / "results" / f"sf{sf}" / f"BENCHMARKS-SF{sf}.md"),
        "--iterations",
        str(iterations),
        "--run-id",
        "test-run",
        *extra,
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def report_rows(report: str) -> dict[str, str]:
    """{'q01': '| q01 | ... |', ...} for the per-query rows of the report table."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| (q\d\d) \|.*$", report, re.M)}


def queries_dir_with(tmp_path: Path, query: str, sql: str) -> Path:
    altered = tmp_path / "queries"
    shutil.copytree(QUERIES_DIR, altered)
    (altered / f"{query}.sql").write_text(sql)
    return altered


@pytest.fixture(scope="module")
def full_run(sf001_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = run_bench(*bench_args(sf001_data, out))
    return result, out / "results" / "sf0.01"


def test_full_run_exits_0(full_run):
    result, _ = full_run
    assert result.returncode == 0, result.stdout + result.stderr


def test_full_run_records_every_query_engine_and_iteration_in_order(full_run):
    _, results_dir = full_run
    records = read_jsonl(results_dir / "tpch.jsonl")
    expected = [
        (query, engine, iteration) for query in QUERIES for engine in ("duckdb", "datafusion") for iteration in (0, 1)
    ]
    assert [(r["query"], r["engine"], r["iteration"]) for r in records] == expected


def test_full_run_records_have_every_field_with_its_type(full_run):
    _, results_dir = full_run
    for record in read_jsonl(results_dir / "tpch.jsonl"):
        for field, kind in RECORD_FIELDS.items():
            assert isinstance(record[field], kind), (field, record)
        assert record["warmup"] is (record["iteration"] == 0)
        assert record["sf"] == "0.01" and record["run_id"] == "test-run"


def test_full_run_answers_are_all_valid_and_the_engines_agree(full_run):
    _, results_dir = full_run
    records = read_jsonl(results_dir / "tpch.jsonl")
    assert all(r["ok"] and r["valid"] is True for r in records)
    for query in QUERIES:
        digests = {r["answer_digest"] for r in records if r["query"] == query}
        assert len(digests) == 1, query


def test_full_run_prints_one_line_per_record(full_run):
    result, results_dir = full_run
    record_lines = [line for line in result.stdout.splitlines() if re.match(r"q\d\d ", line)]
    assert len(record_lines) == len(read_jsonl(results_dir / "tpch.jsonl"))


def test_full_run_report_has_a_valid_row_per_query_and_totals(full_run):
    _, results_dir = full_run
    report = (results_dir / "BENCHMARKS-SF0.01.md").read_text()
    rows = report_rows(report)
    assert sorted(rows) == list(QUERIES)
    assert all(row.rstrip(" |").endswith("valid") for row in rows.values())
    assert "| **Total** |" in report and "test-run" in report
    assert "duckdb" in report and "datafusion" in report


def test_report_py_regenerates_the_same_report_from_the_results(full_run, tmp_path):
    _, results_dir = full_run
    regenerated = tmp_path / "again.md"
    result = subprocess.run(
        [sys.executable, str(STAGE_DIR / "report.py"), str(results_dir / "tpch.jsonl"), str(regenerated)],
        capture_output=True,
        text=True,
        env=stage_env(),
    )
    assert result.returncode == 0, result.stderr
    assert regenerated.read_text() == (results_dir / "BENCHMARKS-SF0.01.md").read_text()


def test_report_py_drops_a_torn_last_line(full_run, tmp_path):
    _, results_dir = full_run
    torn = tmp_path / "torn.jsonl"
    text = (results_dir / "tpch.jsonl").read_text()
    torn.write_text(text + '{"run_id": "test-run", "engi')
    result = subprocess.run(
        [sys.executable, str(STAGE_DIR / "report.py"), str(torn), str(tmp_path / "torn.md")],
        capture_output=True,
        text=True,
        env=stage_env(),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "torn.md").read_text() == (results_dir / "BENCHMARKS-SF0.01.md").read_text()


def test_a_wrong_answer_is_marked_invalid_and_fails_the_stage(sf001_data, tmp_path):
    q06 = (QUERIES_DIR / "q06.sql").read_text()
    altered = queries_dir_with(tmp_path, "q06", q06.replace("l_quantity < 24", "l_quantity < 25"))
    result = run_bench(
        *bench_args(
            sf001_data,
            tmp_path,
            "--queries",
            "q01,q06",
            "--queries-dir",
            str(altered),
        )
    )
    assert result.returncode == 1, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "results" / "sf0.01" / "tpch.jsonl")
    assert {r["valid"] for r in records if r["query"] == "q01"} == {True}
    wrong = [r for r in records if r["query"] == "q06"]
    assert len(wrong) == 4 and all(r["valid"] is False and r["ok"] for r in wrong)
    assert all("q6.out" in r["mismatch"] for r in wrong)
    rows = report_rows((tmp_path / "results" / "sf0.01" / "BENCHMARKS-SF0.01.md").read_text())
    assert "INVALID" in rows["q06"] and "INVALID" not in rows["q01"]


def test_without_a_reference_engines_that_disagree_make_the_query_invalid(sf001_data, tmp_path):
    # "/" on integers: DuckDB divides exactly (500000), DataFusion truncates (0), far beyond the
    # tolerance of 100 for q06's sum column.
    altered = queries_dir_with(tmp_path, "q06", "select 1 / 2 * 1000000 as revenue;")
    result = run_bench(
        *bench_args(
            sf001_data,
            tmp_path,
            "--queries",
            "q01,q06",
            "--queries-dir",
            str(altered),
            sf="0.02",
        )
    )
    assert result.returncode == 1, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "results" / "sf0.02" / "tpch.jsonl")
    assert {r["valid"] for r in records if r["query"] == "q01"} == {None}
    assert [r["valid"] for r in records if r["query"] == "q06"] == [None, None, False, False]
    assert "differs from the answer of duckdb" in records[-1]["mismatch"]
    rows = report_rows((tmp_path / "results" / "sf0.02" / "BENCHMARKS-SF0.02.md").read_text())
    assert rows["q01"].rstrip(" |").endswith("agree") and "INVALID" in rows["q06"]


def test_a_query_that_raises_is_recorded_and_the_run_goes_on(sf001_data, tmp_path):
    altered = queries_dir_with(tmp_path, "q01", "select no_such_column from lineitem;")
    result = run_bench(
        *bench_args(
            sf001_data,
            tmp_path,
            "--queries",
            "q01,q06",
            "--queries-dir",
            str(altered),
            iterations=2,
        )
    )
    assert result.returncode == 1, result.stdout + result.stderr
    records = read_jsonl(tmp_path / "results" / "sf0.01" / "tpch.jsonl")
    failed = [r for r in records if r["query"] == "q01"]
    assert [(r["engine"], r["ok"]) for r in failed] == [("duckdb", False), ("datafusion", False)]
    assert all("no_such_column" in r["error"] for r in failed)
    assert [r["ok"] and r["valid"] for r in records if r["query"] == "q06"] == [True] * 6
    report = (tmp_path / "results" / "sf0.01" / "BENCHMARKS-SF0.01.md").read_text()
    assert "ERROR" in report_rows(report)["q01"]


def assert_refused_before_writing(result, out: Path, *names_in_message: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    for name in names_in_message:
        assert name in result.stderr
    assert not (out / "results").exists()


def test_missing_data_dir_is_refused_before_anything_is_written(tmp_path):
    missing = tmp_path / "data" / "sf0.01"
    result = run_bench(*bench_args(missing, tmp_path))
    assert_refused_before_writing(result, tmp_path, str(missing))


def test_missing_table_file_is_refused_naming_it(sf001_data, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(sf001_data, partial)
    (partial / "lineitem.parquet").unlink()
    result = run_bench(*bench_args(partial, tmp_path))
    assert_refused_before_writing(result, tmp_path, str(partial / "lineitem.parquet"))
    assert all(str(partial / f"{t}.parquet") not in result.stderr for t in TABLES if t != "lineitem")


def test_an_existing_results_file_is_refused_and_left_alone(sf001_data, tmp_path):
    results = tmp_path / "results" / "sf0.01" / "tpch.jsonl"
    results.parent.mkdir(parents=True)
    results.write_text("earlier run\n")
    result = run_bench(*bench_args(sf001_data, tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(results) in result.stderr
    assert results.read_text() == "earlier run\n"
    assert not (results.parent / "BENCHMARKS-SF0.01.md").exists()


def wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        lines = path.read_text().count("\n") if path.exists() else 0
        if lines >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines while the bench was running")


def test_records_are_on_disk_as_they_complete_and_survive_an_interrupt(sf001_data, tmp_path):
    results = tmp_path / "results" / "sf0.01" / "tpch.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(STAGE_DIR / "bench.py"), *bench_args(sf001_data, tmp_path, iterations=100_000)],
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_lines(results, 3, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and str(results) in stderr
    records = read_jsonl(results)
    assert len(records) >= 3 and all(r["query"] == "q01" for r in records)
    assert not (results.parent / "BENCHMARKS-SF0.01.md").exists()


def test_every_printed_record_is_already_in_the_results_file_when_killed(sf001_data, tmp_path):
    # SIGKILL leaves no chance to flush at exit: only records written through as they complete
    # are on disk. Each record is written before its line is printed, so the file holds every
    # printed record, plus at most the one whose line was not printed yet.
    results = tmp_path / "results" / "sf0.01" / "tpch.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(STAGE_DIR / "bench.py"), *bench_args(sf001_data, tmp_path, iterations=100_000)],
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_lines(results, 5, process)
    finally:
        process.kill()
    stdout, _ = process.communicate(timeout=60)
    printed = len([line for line in stdout.splitlines() if line.startswith("q01 ")])
    written = results.read_text().count("\n")
    assert printed <= written <= printed + 1, (printed, written)
