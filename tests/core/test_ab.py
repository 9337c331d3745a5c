"""`campaign ab`: two commits in one run, interleaved rounds, a stored comparison, kill -9 and resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, git, make_repo, run_cli

SLOW = "l_quantity < 24\n    and (select count(*) from lineitem a join lineitem b on a.l_suppkey = b.l_suppkey) > 0"
ARGS = ("sf0.01", "--var", "iterations=8", "--var", "queries=q01,q06", "--seed", "3")
EXPECTED = 2 * 2 * 2 * 9  # queries × engines × sides × (cold round + 8 rounds)


@pytest.fixture(scope="module")
def ab_repo(tmp_path_factory) -> Path:
    """The TPC-H campaign committed twice: `base`, and `slow` whose q06 does a needless self-join."""
    repo = make_repo(tmp_path_factory.mktemp("ab") / "repo", {})
    shutil.copy(REPO_ROOT / "campaign.yaml", repo / "campaign.yaml")
    shutil.copytree(REPO_ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    q06 = repo / "stages" / "tpch" / "queries" / "q06.sql"
    q06.write_text(q06.read_text().replace("l_quantity < 24", SLOW))
    git(repo, "commit", "-q", "-am", "q06 slower, same answer")
    git(repo, "tag", "slow")
    return repo


def results_of(repo: Path) -> list[Path]:
    return list((repo / ".campaign" / "runs").glob("*/outputs/results/sf0.01/tpch.jsonl"))


def kill_after(process: subprocess.Popen, repo: Path, records: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = results_of(repo)
        if found and found[0].read_text().count("\n") >= records:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    pytest.fail(f"no {records} records within {timeout} s")


def test_ab_interleaves_survives_kill_9_and_stores_the_comparison(ab_repo: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign.cli", "ab", "base", "slow", *ARGS],
        cwd=ab_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kill_after(process, ab_repo, 30)
    store = ab_repo / ".campaign" / "store" / "runs"
    [run_id] = [p.name for p in store.iterdir()]
    assert not (store / run_id / "comparison.json").exists()

    resumed = run_cli(ab_repo, "resume", "latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = [json.loads(line) for line in results_of(ab_repo)[0].read_text().splitlines()]
    keys = [(r["side"], r["engine"], r["query"], r["round"]) for r in records]
    assert len(keys) == len(set(keys)) == EXPECTED, "every execution exactly once after the kill"
    assert all(r["ok"] and r["valid"] is True for r in records)
    rounds = [r["round"] for r in records]
    assert rounds == sorted(rounds), "round by round"
    orders = [[(r["side"], r["engine"], r["query"]) for r in records if r["round"] == n] for n in (1, 2)]
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1]), "each round in its own order"
    assert {r["order_seed"] for r in records} == {3}
    assert all(r["cold"] in (True, "lukewarm") for r in records if r["round"] == 0)

    record = json.loads((store / run_id / "run.json").read_text())
    assert record["sides"] == {
        "base": git(ab_repo, "rev-parse", "base").strip(),
        "contender": git(ab_repo, "rev-parse", "slow").strip(),
    }
    document = json.loads((store / run_id / "comparison.json").read_text())["comparisons"][0]
    verdicts = {(row["item"], row["engine"]): row["verdict"] for row in document["rows"]}
    assert (document["base"], document["contender"]) == ("base", "contender")
    assert verdicts[("q06", "duckdb")] == verdicts[("q06", "datafusion")] == "slower"
    assert verdicts[("q01", "duckdb")] != "faster" and verdicts[("q01", "datafusion")] != "faster"
    assert "SLOWER" in resumed.stdout and (store / run_id / "comparison.html").stat().st_size > 1_000_000

    again = run_cli(ab_repo, "compare", run_id[:12], "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["comparisons"][0]["contender"] == "contender"


def test_ab_refuses_an_unknown_revision(ab_repo: Path):
    unknown = run_cli(ab_repo, "ab", "base", "no-such-branch", "sf0.01")
    assert unknown.returncode == 2 and "'no-such-branch' is not a commit" in unknown.stderr


def test_ab_of_one_commit_against_itself_calls_no_change(ab_repo: Path):
    """A real pair of the same commit, interleaved: no query may come out slower or faster (at most one
    false call of the eight is tolerated: the per-comparison false-positive rate is about 0.2 %)."""
    result = run_cli(
        ab_repo,
        "ab",
        "base",
        "base",
        "sf0.01",
        "--var",
        "iterations=10",
        "--var",
        "queries=q01,q03,q06,q12",
        "--seed",
        "5",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = next(line for line in result.stdout.splitlines() if line.startswith("run: ")).removeprefix("run: ")
    store = ab_repo / ".campaign" / "store" / "runs" / run_id
    rows = json.loads((store / "comparison.json").read_text())["comparisons"][0]["rows"]
    assert len(rows) == 8
    called = [(row["item"], row["engine"], row["verdict"]) for row in rows if row["verdict"] != "no change"]
    assert len(called) <= 1, called


GENERIC_CAMPAIGN = """\
name: generic-ab
scale_factors: [1]
vars: {rounds: 8}
stages:
  - name: build
    kind: build
    run: mkdir -p out && cp value.txt out/value.txt
    build_output: [out]
  - name: bench
    kind: bench
    per: scale_factor
    needs: [build]
    run: python scripts/bench.py {{ output_dir }}/results/sf{{ sf }}/r.jsonl {{ vars.rounds }}
    incremental: "results/sf{{ sf }}/r.jsonl"
"""

GENERIC_BENCH = """\
import json, os, random, sys
from pathlib import Path
results, rounds = Path(sys.argv[1]), int(sys.argv[2])
sides = [item.split("=", 1) for item in os.environ["CAMPAIGN_SIDES"].split(",")]
order = random.Random(os.environ["CAMPAIGN_ORDER_SEED"])
results.parent.mkdir(parents=True, exist_ok=True)
with open(results, "a") as out:
    for round_number in range(rounds + 1):
        order.shuffle(sides)
        for name, checkout in sides:
            built = float((Path(checkout) / "out" / "value.txt").read_text())
            elapsed = built * (1 + 0.02 * order.random())
            out.write(json.dumps({"item": "work", "side": name, "round": round_number, "ok": True,
                                  "elapsed_ms": elapsed, "warmup": round_number == 0}) + "\\n")
"""


def test_ab_works_for_any_bench_following_the_contract_and_builds_each_side(tmp_path: Path):
    repo = make_repo(
        tmp_path / "repo", {"campaign.yaml": GENERIC_CAMPAIGN, "scripts/bench.py": GENERIC_BENCH, "value.txt": "10\n"}
    )
    (repo / "value.txt").write_text("20\n")
    git(repo, "commit", "-q", "-am", "twice as slow")
    result = run_cli(repo, "ab", "HEAD~1", "HEAD", "--seed", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SLOWER" in result.stdout
    run_id = next(line for line in result.stdout.splitlines() if line.startswith("run: ")).removeprefix("run: ")
    log = run_cli(repo, "logs", run_id, "build").stdout
    assert "side base" in log and "side contender" in log and log.count("building in") == 2
    document = json.loads(run_cli(repo, "compare", "latest", "--json").stdout)["comparisons"][0]
    [row] = document["rows"]
    assert (row["item"], row["verdict"]) == ("work", "slower") and 1.9 < row["ratio"] < 2.1
