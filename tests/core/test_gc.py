"""`campaign gc`: removes the checkouts and regenerable data of finished, verified runs, and nothing else.

Real runs of a small campaign (`campaign` in a subprocess, git, a folder store); the kept cases are made the way
they happen: a run interrupted, a lease held, a stored artifact damaged, another store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.core.cache_helpers import cached_repo, run_ok
from tests.core.conftest import run_cli


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_gc_removes_checkouts_and_data_of_finished_runs_and_keeps_results_logs_and_journal(tmp_path: Path):
    repo = cached_repo(tmp_path)
    run_id, _ = run_ok(repo)
    run_dir = repo / ".campaign" / "runs" / run_id
    data = run_dir / "outputs" / "data" / "sf0.01"
    assert (run_dir / "checkout" / ".git").exists() and (data / "part" / "blob.bin").is_file()
    kept_before = {
        name: files_under(run_dir / name) for name in ("logs", "outputs/results") if (run_dir / name).exists()
    }
    journal = (run_dir / "journal.jsonl").read_bytes()
    staging = run_dir / ".cache-staging-0123456789abcdef" / "data" / "sf0.01"  # what a fetch killed by -9 leaves
    staging.mkdir(parents=True)
    (staging / "lineitem.parquet").write_bytes(b"half a table")

    dry = run_cli(repo, "gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        f"would remove {run_dir / 'checkout'}" in dry.stdout
        and f"would remove {data / 'part' / 'blob.bin'}" in dry.stdout
    )
    assert "1 finished run(s) would be cleaned, would free" in dry.stdout and "nothing removed" in dry.stdout
    assert (run_dir / "checkout").exists() and (data / "part" / "blob.bin").is_file()

    done = run_cli(repo, "gc")
    assert done.returncode == 0, done.stderr
    assert f"removed {run_dir / 'checkout'}" in done.stdout and "1 finished run(s) cleaned, freed" in done.stdout
    assert not (run_dir / "checkout").exists() and not data.exists()
    assert not (run_dir / ".cache-staging-0123456789abcdef").exists()
    assert {name: files_under(run_dir / name) for name in kept_before} == kept_before
    assert (run_dir / "journal.jsonl").read_bytes() == journal
    assert "results/sf0.01/toy.jsonl" in files_under(run_dir / "outputs")
    assert "0 finished run(s) cleaned" in run_cli(repo, "gc").stdout  # nothing left to remove
    assert run_cli(repo, "verify", run_id).returncode == 0  # the store's copy is untouched


def test_gc_keeps_runs_that_are_unfinished_held_unverified_recent_or_in_another_store(tmp_path: Path):
    repo = cached_repo(tmp_path)
    store = repo / ".campaign" / "store"
    ids = [run_ok(repo)[0] for _ in range(4)]
    interrupted, held, damaged, elsewhere = ids
    journal = repo / ".campaign" / "runs" / interrupted / "journal.jsonl"
    last = json.loads(journal.read_text().splitlines()[-1])
    journal.write_text(
        journal.read_text() + json.dumps({**last, "seq": last["seq"] + 1, "state": "interrupted"}) + "\n"
    )
    lease = {"agent": "h:1:t", "host": "h", "pid": 1, "acquired_at": "x", "heartbeat_at": "x", "heartbeat_epoch": 0}
    (store / "runs" / held / "lease.json").write_text(json.dumps(lease))
    log = store / "runs" / damaged / "logs" / "bench[sf0.01].log"
    log.write_text(log.read_text() + "changed behind the store's back\n")
    (store / "runs" / elsewhere / "manifest.json").unlink()

    recent = run_cli(repo, "gc", "--older-than", "1")
    assert recent.returncode == 0, recent.stderr
    assert recent.stdout.count("within --older-than") == 3 and "0 finished run(s) cleaned" in recent.stdout

    result = run_cli(repo, "gc")
    assert result.returncode == 0, result.stderr
    kept = {
        line.split(":")[0].removeprefix("kept "): line
        for line in result.stdout.splitlines()
        if line.startswith("kept ")
    }
    assert "not finished (its journal says interrupted)" in kept[interrupted]
    assert "holds its lease" in kept[held]
    assert "fail verification" in kept[damaged] and str(log) in kept[damaged]
    assert "no manifest" in kept[elsewhere]
    assert "0 finished run(s) cleaned" in result.stdout
    for run_id in ids:
        assert (repo / ".campaign" / "runs" / run_id / "checkout").exists()


def test_gc_on_a_state_dir_without_runs_says_so(tmp_path: Path):
    repo = cached_repo(tmp_path)
    result = run_cli(repo, "gc", "--state-dir", str(tmp_path / "empty"), env={**os.environ})
    assert result.returncode == 0, result.stderr
    assert "0 finished run(s) cleaned, freed 0 bytes; 0 run(s) kept" in result.stdout
