"""Fault injection: kill -9 of the agent at seeded random points, then `campaign resume`.

Each trial must end with exactly the records of an uninterrupted run (same keys, no duplicates,
answers valid) and a manifest that verifies. The seed is in every test id and failure message;
rerun one with CAMPAIGN_FAULT_SEED=<seed>.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, git, make_repo, run_cli

SEED = int(os.environ.get("CAMPAIGN_FAULT_SEED", "20261122"))
TRIALS = 30
# Crash points inside the agent (CAMPAIGN_FAULT=site:n) and how often each is reached in one run.
CRASH_SITES = {
    "journal.append": 6,
    "journal.torn": 6,
    "journal.mirror": 6,
    "journal.compact": 2,
    "upload": 5,
    "sync": 1,
    "stage.start": 2,
    "stage.end": 2,
}
BENCH_RECORDS = 22 * 2 * 2  # 22 queries x 2 engines x (warm-up + 1 iteration)


def fault_plan(seed: int) -> list[tuple[str, int]]:
    """30 faults spread over generation, mid-query bench, uploads and journal writes."""
    rng = random.Random(seed)
    kinds = ["during-generate"] * 5 + ["at-record"] * 9 + [site for site in CRASH_SITES for _ in range(2)]
    assert len(kinds) == TRIALS
    rng.shuffle(kinds)
    plan = []
    for kind in kinds[:TRIALS]:
        if kind == "during-generate":
            plan.append((kind, rng.randint(0, 600)))  # ms after the generate stage starts
        elif kind == "at-record":
            plan.append((kind, rng.randint(1, BENCH_RECORDS - 1)))
        else:
            plan.append((kind, rng.randint(1, CRASH_SITES[kind])))
    return plan


@pytest.fixture(scope="module")
def tpch_repo(tmp_path_factory) -> Path:
    """The project's TPC-H campaign with one measured iteration, committed in a fresh repository."""
    repo = make_repo(tmp_path_factory.mktemp("faults") / "repo", {})
    campaign = re.sub(r"iterations: \d+", "iterations: 1", (REPO_ROOT / "campaign.yaml").read_text())
    assert "iterations: 1" in campaign
    (repo / "campaign.yaml").write_text(campaign)
    shutil.copytree(REPO_ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tpch, one iteration")
    return repo


def results_of(repo: Path, run_id: str) -> list[dict]:
    path = repo / ".campaign/store/runs" / run_id / "outputs/results/sf0.01/tpch.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def keys(records: list[dict]) -> list[tuple]:
    return sorted((r["query"], r["engine"], r["iteration"]) for r in records)


@pytest.fixture(scope="module")
def uninterrupted(tpch_repo: Path) -> list[tuple]:
    result = run_cli(tpch_repo, "run", "sf0.01")
    assert result.returncode == 0, result.stderr[-2000:]
    records = results_of(tpch_repo, result.stdout.split()[1])
    assert len(records) == BENCH_RECORDS
    return keys(records)


def start_run(repo: Path, **env: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign.cli", "run", "sf0.01", "--sync-interval", "0.2"],
        cwd=repo,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline().strip()
    assert first.startswith("run: "), process.stderr.read()
    return process, first.removeprefix("run: ")


def kill_when(process: subprocess.Popen, ready, *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before the fault: the trial tests nothing"


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def inject(repo: Path, kind: str, value: int) -> str:
    """Start a run, kill -9 its agent at the chosen point; returns the run id."""
    if kind in CRASH_SITES:
        process, run_id = start_run(repo, CAMPAIGN_FAULT=f"{kind}:{value}")
        process.communicate(timeout=120)
        assert process.returncode == -signal.SIGKILL, f"crash point {kind}:{value} was never reached"
        return run_id
    if kind == "during-generate":  # the data is cached after the first run: drop it, so the stage generates
        dropped = run_cli(repo, "cache", "rm", "--all")
        assert dropped.returncode == 0, dropped.stderr
    process, run_id = start_run(repo)
    run_dir = repo / ".campaign/runs" / run_id
    if kind == "during-generate":
        log = run_dir / "logs/tpch-generate[sf0.01].log"
        kill_when(process, lambda: log.exists() and time.sleep(value / 1000) is None)
    else:
        results = run_dir / "outputs/results/sf0.01/tpch.jsonl"
        kill_when(process, lambda: line_count(results) >= value)
    return run_id


@pytest.mark.parametrize(
    "trial, fault",
    list(enumerate(fault_plan(SEED))),
    ids=[f"seed{SEED}-{i:02d}-{k}:{v}" for i, (k, v) in enumerate(fault_plan(SEED))],
)
def test_kill_9_then_resume_gives_exactly_the_uninterrupted_records(tpch_repo, uninterrupted, trial, fault):
    kind, value = fault
    where = f"(seed {SEED}, trial {trial}: {kind}:{value})"
    run_id = inject(tpch_repo, kind, value)

    resumed = run_cli(tpch_repo, "resume", run_id)
    assert resumed.returncode == 0, f"resume failed {where}:\n{resumed.stderr[-3000:]}"
    records = results_of(tpch_repo, run_id)
    assert keys(records) == uninterrupted, f"records differ from an uninterrupted run {where}"
    assert all(r["ok"] and r["valid"] for r in records), f"an invalid answer {where}"
    verified = run_cli(tpch_repo, "verify", run_id, "--deep")
    assert verified.returncode == 0, f"manifest does not verify {where}:\n{verified.stderr}"
    status = json.loads(run_cli(tpch_repo, "status", run_id, "--json").stdout)
    assert status["state"] == "succeeded", where
