"""Harness overhead: wall time of `campaign run SELECTION` ÷ the sum of its stages' own measured work.

Target ≤ 1.02 for sf1. Runs the real CLI on a fresh clone of this repository's HEAD (so the smoke
gate passes exactly as for a user) with a throw-away state folder and store, then reads each stage
run's duration from the journal. Usage: python bench/harness_overhead.py [--selection sf1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--selection", default="sf1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
        store = Path(tmp) / "store"
        command = [str(Path(sys.executable).parent / "campaign"), "run", args.selection, "--store", str(store)]
        began = time.perf_counter()
        result = subprocess.run(command, cwd=clone, capture_output=True, text=True)
        wall = time.perf_counter() - began
        if result.returncode != 0:
            sys.exit(f"campaign run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        run_id = result.stdout.splitlines()[0].removeprefix("run: ")
        entries = [json.loads(line) for line in (store / "runs" / run_id / "journal.jsonl").read_text().splitlines()]
    work = {e["stage_run"]: e["duration_s"] for e in entries if e.get("state") == "succeeded" and e["kind"] == "stage"}
    total = sum(work.values())
    for stage_run, seconds in work.items():
        print(f"  {stage_run:<24} {seconds:8.2f} s")
    print(f"run {args.selection}: wall {wall:.2f} s, stages' own work {total:.2f} s, harness {wall - total:.2f} s")
    print(f"harness overhead ratio (wall / stage work): {wall / total:.4f}  (target ≤ {TARGET})")


if __name__ == "__main__":
    main()
