"""The default TPC-H campaign end to end at SF 0.01: real tpchgen-cli, DuckDB and DataFusion."""

import json
import shutil
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, git, make_repo, run_cli

QUERIES = 22
ENGINES = {"duckdb", "datafusion"}


@pytest.fixture
def tpch_repo(tmp_path: Path) -> Path:
    """A fresh repository holding exactly the project's campaign file and stage scripts, committed."""
    repo = make_repo(tmp_path / "repo", {})
    shutil.copy(REPO_ROOT / "campaign.yaml", repo / "campaign.yaml")
    shutil.copytree(REPO_ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tpch campaign")
    return repo


ITERATIONS = 3  # --var iterations=3: the default (bench/compare_stats.py) is for real measurements


def iterations() -> int:
    return ITERATIONS


def check_results(records: list[dict], run_id: str) -> None:
    expected = QUERIES * len(ENGINES) * (1 + iterations())
    assert len(records) == expected
    keys = {(r["query"], r["engine"], r["iteration"]) for r in records}
    assert len(keys) == expected, "a query × engine × iteration appears twice"
    assert {r["engine"] for r in records} == ENGINES
    assert {r["query"] for r in records} == {f"q{n:02d}" for n in range(1, QUERIES + 1)}
    assert all(r["ok"] and r["valid"] is True for r in records), [r for r in records if not r["valid"]][:2]
    assert all(r["run_id"] == run_id and r["sf"] in ("0.01", 0.01) for r in records)
    assert sum(r["warmup"] for r in records) == QUERIES * len(ENGINES)


def test_tpch_sf0_01_local_end_to_end(tpch_repo: Path, tmp_path: Path):
    store = tmp_path / "store"
    result = run_cli(tpch_repo, "run", "sf0.01", "--store", str(store), "--var", f"iterations={ITERATIONS}")
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    outputs = store / "runs" / run_id / "outputs" / "results" / "sf0.01"
    records = [json.loads(line) for line in (outputs / "tpch.jsonl").read_text().splitlines()]
    check_results(records, run_id)
    record = json.loads((store / "runs" / run_id / "run.json").read_text())
    assert record["vars"] == {"iterations": ITERATIONS, "queries": "all", "engines": "all", "order": "rounds"}
    assert record["host"]["cores"] >= 1 and record["host"]["cpu_model"] and record["host"]["kernel"]
    assert "summary results/sf0.01/tpch.jsonl: 22 items; failed 0, wrong answers 0" in result.stdout
    assert (outputs / "report.html").stat().st_size > 1_000_000  # plotly's JavaScript is inlined
    report = (outputs / "BENCHMARKS-SF0.01.md").read_text()
    assert "| **Geometric mean** |" in report and "cold ms" in report
    rows = [line for line in report.splitlines() if line.startswith("| q")]
    assert [row.split("|")[1].strip() for row in rows] == [f"q{n:02d}" for n in range(1, QUERIES + 1)]
    assert all(row.rstrip(" |").endswith("valid") for row in rows)

    journal = [json.loads(line) for line in (store / "runs" / run_id / "journal.jsonl").read_text().splitlines()]
    assert [(e["stage_run"], e["state"]) for e in journal if e["kind"] == "stage"] == [
        ("tpch-generate[sf0.01]", "running"),
        ("tpch-generate[sf0.01]", "succeeded"),
        ("tpch-bench[sf0.01]", "running"),
        ("tpch-bench[sf0.01]", "succeeded"),
    ]
    manifest = json.loads((store / "runs" / run_id / "manifest.json").read_text())
    stored = {p.relative_to(store).as_posix() for p in (store / "runs" / run_id).rglob("*") if p.is_file()}
    assert {a["key"] for a in manifest["artifacts"]} == stored - {
        f"runs/{run_id}/{name}" for name in ("run.json", "journal.jsonl", "manifest.json")
    }
    assert run_cli(tpch_repo, "verify", run_id, "--store", str(store), "--deep").returncode == 0


def test_tpch_sf0_01_with_the_s3_store(tpch_repo: Path, s3_bucket: str):
    url = f"s3://{s3_bucket}/campaigns"
    result = run_cli(tpch_repo, "run", "sf0.01", "--store", url, "--var", f"iterations={ITERATIONS}")
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    assert f"results (stored in {url}/runs/{run_id}/outputs/):" in result.stdout
    assert result.stdout.rstrip().endswith("/outputs/results/sf0.01/tpch.jsonl")

    import boto3

    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=s3_bucket, Key=f"campaigns/runs/{run_id}/outputs/results/sf0.01/tpch.jsonl")["Body"]
    check_results([json.loads(line) for line in body.read().decode().splitlines()], run_id)
    status = run_cli(tpch_repo, "status", run_id, "--store", url, "--json")
    assert json.loads(status.stdout)["state"] == "succeeded"
    log = run_cli(tpch_repo, "logs", run_id, "tpch-bench[sf0.01]", "--store", url)
    assert log.returncode == 0 and "q22" in log.stdout
    assert run_cli(tpch_repo, "verify", run_id, "--store", url).returncode == 0


def test_upload_into_a_missing_bucket_fails_the_run_naming_the_object(tpch_repo: Path, s3_server: str):
    result = run_cli(tpch_repo, "run", "sf0.01", "--store", "s3://no-such-bucket-for-campaign/x")
    assert result.returncode == 5
    assert "s3://no-such-bucket-for-campaign/x/" in result.stderr
    assert "does not exist" in result.stderr
