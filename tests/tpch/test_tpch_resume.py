"""Item-level resume of bench.py: records on disk are kept, none duplicated, none lost."""

import json
from pathlib import Path

from tpch_helpers import run_bench


def bench_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--sf",
        "0.01",
        "--data-dir",
        str(data),
        "--results",
        str(out / "r.jsonl"),
        "--report",
        str(out / "r.md"),
        "--iterations",
        "2",
        "--run-id",
        "resume-test",
        "--queries",
        "q01,q06,q14",
        *extra,
    ]


def keys(path: Path) -> list[tuple]:
    return [(r["query"], r["engine"], r["iteration"]) for r in map(json.loads, path.read_text().splitlines())]


def test_resume_continues_a_torn_partial_file_to_exactly_the_full_set(sf001_data: Path, tmp_path: Path):
    full, partial = tmp_path / "full", tmp_path / "partial"
    assert run_bench(*bench_args(sf001_data, full)).returncode == 0
    lines = (full / "r.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 3 * 2 * 3
    partial.mkdir()
    kept = "".join(lines[:7])  # q01 both engines done, q06 duckdb warm-up done
    (partial / "r.jsonl").write_text(kept + lines[7][:25])  # ...and half a record: a crash mid-write

    result = run_bench(*bench_args(sf001_data, partial, "--resume"))

    assert result.returncode == 0, result.stderr
    assert "resuming: 7 records already in" in result.stdout
    assert "cut a torn last line" in result.stdout
    assert "q06 duckdb     resume warm-up (not recorded)" in result.stdout
    resumed = (partial / "r.jsonl").read_text()
    assert resumed.startswith(kept)  # what was measured stays byte for byte
    assert sorted(keys(partial / "r.jsonl")) == sorted(keys(full / "r.jsonl"))
    assert len(set(keys(partial / "r.jsonl"))) == len(lines)
    assert all(json.loads(line)["valid"] for line in resumed.splitlines())


def test_the_runner_contract_env_var_turns_resume_on(sf001_data: Path, tmp_path: Path, monkeypatch):
    assert run_bench(*bench_args(sf001_data, tmp_path)).returncode == 0
    monkeypatch.setenv("CAMPAIGN_RESUME", "1")
    again = run_bench(*bench_args(sf001_data, tmp_path))
    assert again.returncode == 0, again.stderr
    assert "resuming: 18 records already in" in again.stdout
    assert len(keys(tmp_path / "r.jsonl")) == 18  # nothing re-run, nothing duplicated


def test_without_resume_an_existing_results_file_is_refused(sf001_data: Path, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CAMPAIGN_RESUME", raising=False)
    (tmp_path / "r.jsonl").write_text("")
    result = run_bench(*bench_args(sf001_data, tmp_path))
    assert result.returncode == 2
    assert "already exists; without --resume this stage never appends" in result.stderr


def limited_file_size(limit: int):
    import resource

    def apply() -> None:  # in the child, before exec: the kernel refuses writes past `limit` bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_size_limit_stops_the_bench_with_the_path_named_and_earlier_records_kept(
    sf001_data: Path, tmp_path: Path
):
    import subprocess
    import sys

    from tpch_helpers import STAGE_DIR, stage_env

    result = subprocess.run(
        [sys.executable, str(STAGE_DIR / "bench.py"), *bench_args(sf001_data, tmp_path)],
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limited_file_size(6000),
    )
    assert result.returncode == 3, result.stderr
    path = tmp_path / "r.jsonl"
    assert f"cannot append a record to {path}: File too large." in result.stderr
    complete = path.read_bytes()[: path.read_bytes().rfind(b"\n") + 1].decode().splitlines()
    assert len(complete) >= 3 and all(json.loads(line)["ok"] for line in complete)
    assert f"The {len(complete)} records before it are intact" in result.stderr
    resumed = run_bench(*bench_args(sf001_data, tmp_path, "--resume"))  # space is back: nothing lost
    assert resumed.returncode == 0, resumed.stderr
    assert path.read_text().startswith("\n".join(complete) + "\n")
    assert len(keys(path)) == len(set(keys(path))) == 18
