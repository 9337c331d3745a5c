"""What a crash costs: kill -9 the agent at record k of n of the TPC-H bench, then `campaign resume`.

Prints, measured in one run on a fresh clone of HEAD:
- records kept from before the kill, duplicated (target 0) and lost (target 0);
- items re-executed: the ones whose execution had begun before the kill (target ≤ 1), plus the
  unrecorded warm-ups the resumed bench runs before continuing a query × engine;
- resumed wall ÷ the uninterrupted run's wall for the same remaining records (target ≤ 1.1).
Usage: python bench/resume_cost.py [--selection sf1] [--at 0.5]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = str(Path(sys.executable).parent / "campaign")


def run(clone: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    began = time.perf_counter()
    result = subprocess.run([CAMPAIGN, *args], cwd=clone, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"campaign {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result, time.perf_counter() - began


def records(clone: Path, run_id: str, sf: str) -> list[dict]:
    path = clone / ".campaign/runs" / run_id / f"outputs/results/sf{sf}/tpch.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def key(record: dict) -> tuple:
    return record["query"], record["engine"], record["iteration"]


def kill_at_record(clone: Path, selection: str, sf: str, k: int) -> str:
    process = subprocess.Popen(
        [CAMPAIGN, "run", selection], cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    run_id = process.stdout.readline().split()[1]
    results = clone / ".campaign/runs" / run_id / f"outputs/results/sf{sf}/tpch.jsonl"
    while process.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= k:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait()
    return run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--selection", default="sf1")
    parser.add_argument("--at", type=float, default=0.5, help="kill after this fraction of the records")
    args = parser.parse_args()
    sf = args.selection.removeprefix("sf")
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
        full_result, _ = run(clone, "run", args.selection)
        full = records(clone, full_result.stdout.split()[1], sf)
        k = int(len(full) * args.at)
        killed = kill_at_record(clone, args.selection, sf, k)
        kept = records(clone, killed, sf)
        _resumed_result, resume_wall = run(clone, "resume", killed)
        final = records(clone, killed, sf)
        journal = [
            json.loads(line) for line in (clone / ".campaign/runs" / killed / "journal.jsonl").read_text().splitlines()
        ]
        found = [e["resumed_records"] for e in journal if e.get("state") == "running" and e.get("resumed_records")]
        attempt_logs = sorted((clone / ".campaign/runs" / killed / "logs").glob("tpch-bench*.attempt*.log"))
        warmups = sum(log.read_text().count("resume warm-up (not recorded)") for log in attempt_logs)

    kept = final[: found[-1]]  # what the resumed stage found: the kill, plus what the orphan added before the reap
    done = {key(r) for r in kept}
    first_missing = next(r for r in full if key(r) not in done)
    remainder = (
        datetime.fromisoformat(full[-1]["started_at"]) - datetime.fromisoformat(first_missing["started_at"])
    ).total_seconds() + full[-1]["elapsed_ms"] / 1000
    duplicated = len(final) - len({key(r) for r in final})
    lost = len({key(r) for r in full} - {key(r) for r in final})
    in_flight = 1 if len(kept) < len(full) else 0
    print(
        f"{args.selection}: {len(full)} records; killed at record {k} of {len(full)}; the resumed stage found "
        f"{len(kept)} (the dead agent's stage ran on until the resume stopped it)"
    )
    print(f"  kept {len(kept)}, duplicated {duplicated} (target 0), lost {lost} (target 0)")
    print(f"  items re-executed: {in_flight} (target ≤ 1; the one in flight), unrecorded warm-ups: {warmups}")
    print(
        f"  resumed wall {resume_wall:.2f} s (CLI start to end, data verified, engines reloaded); "
        f"uninterrupted remainder {remainder:.2f} s"
    )
    print(f"  resume ratio (resumed wall / uninterrupted remainder): {resume_wall / remainder:.3f}  (target ≤ 1.1)")


if __name__ == "__main__":
    main()
