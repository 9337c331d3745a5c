"""The cold run: the first execution of each query × engine, after dropping the page cache where allowed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tpch_helpers import run_bench

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def test_the_first_execution_is_recorded_cold_and_reported_apart(sf001_data: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_DROP_CACHES", "1")
    results = tmp_path / "r.jsonl"
    result = run_bench(
        "--sf",
        "0.01",
        "--data-dir",
        str(sf001_data),
        "--results",
        str(results),
        "--report",
        str(tmp_path / "B.md"),
        "--iterations",
        "2",
        "--run-id",
        "cold",
        "--queries",
        "q01,q06",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in results.read_text().splitlines()]
    expected = True if os.access(DROP_CACHES, os.W_OK) else "lukewarm"  # root: dropped; otherwise lukewarm
    assert [r["cold"] for r in records if r["iteration"] == 0] == [expected] * 4
    assert all(r["cold"] is False for r in records if r["iteration"] > 0)
    report = (tmp_path / "B.md").read_text()
    assert "after 1 cold run (page cache dropped before it)" in report or expected == "lukewarm"
    assert "| **Geometric mean** |" in report and "duckdb cold ms" in report
    assert (tmp_path / "report.html").is_file()


def test_without_permission_the_cold_run_is_lukewarm(sf001_data: Path, tmp_path: Path):
    results = tmp_path / "r.jsonl"  # CAMPAIGN_DROP_CACHES=0 (tests/conftest.py): as if not allowed
    result = run_bench(
        "--sf",
        "0.01",
        "--data-dir",
        str(sf001_data),
        "--results",
        str(results),
        "--report",
        str(tmp_path / "B.md"),
        "--iterations",
        "1",
        "--run-id",
        "cold",
        "--queries",
        "q06",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["cold"] for r in records] == ["lukewarm", False, "lukewarm", False]
    assert "lukewarm: the page cache could not be dropped" in (tmp_path / "B.md").read_text()
