"""Per-stage overhead: a chain of trivial stages (`true`) through the real CLI, and what mirroring the journal costs.

Prints, measured side by side in one run on throwaway git repositories with a folder store:
- harness ms per stage on a 500-stage chain: (wall - the stages' own measured time) / stages (goal ≤ 5 ms);
- the journal's mirroring cost per entry (wall and CPU) at 50, 500 and 2000 stage runs, for the segment mirror and
  for the whole-file mirror it replaced (emulated in the same process), and the ratio of the cost per
  entry at 2000 to that at 50 (goal: flat, ≈ 1; the whole-file mirror grows with the journal).
The CLI runs in a child process whose Journal.mirror and Journal.compact are wrapped with timers.
Usage: python bench/stage_overhead.py [--sizes 50,500,2000] [--overhead-stages 500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_MS_PER_STAGE = 5.0

# The child: the real CLI, with the journal's store writes timed (and, for "whole", done as before).
TIMED_CLI = """
import atexit, json, sys, time
from campaign.run import journal
mode, stats_path = sys.argv[1], sys.argv[2]
stats = {"seconds": 0.0, "cpu": 0.0, "entries": 0}

def timed(method):
    def wrapper(self, *args, **kwargs):
        began, began_cpu = time.perf_counter(), time.thread_time()
        try:
            return method(self, *args, **kwargs)
        finally:
            stats["seconds"] += time.perf_counter() - began
            stats["cpu"] += time.thread_time() - began_cpu
    return wrapper

def whole_file_mirror(self):
    self.store.put_file(self.path, self.key)  # what every entry cost before segments

journal.Journal.mirror = timed(whole_file_mirror if mode == "whole" else journal.Journal.mirror)
if hasattr(journal.Journal, "compact"):  # absent before segments: lets the script time an older checkout too
    journal.Journal.compact = timed(whole_file_mirror if mode == "whole" else journal.Journal.compact)
original_record = journal.Journal.record

def counting_record(self, *args, **kwargs):
    stats["entries"] += 1
    return original_record(self, *args, **kwargs)

journal.Journal.record = counting_record
atexit.register(lambda: open(stats_path, "w").write(json.dumps(stats)))
from campaign.cli.main import console_main
sys.argv = ["campaign", *sys.argv[3:]]
console_main()
"""


def chain_campaign(stages: int) -> str:
    lines = ["name: chain", "scale_factors: [1]", "default_selection: sf1", "stages:"]
    for i in range(stages):
        lines += [f"  - name: s{i}", "    kind: bench", "    run: 'true'"] + ([f"    needs: [s{i - 1}]"] if i else [])
    return "\n".join(lines) + "\n"


def make_repo(root: Path, stages: int) -> Path:
    root.mkdir(parents=True)
    (root / "campaign.yaml").write_text(chain_campaign(stages))
    (root / ".gitignore").write_text(".campaign/\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "c"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    return root


def timed_run(repo: Path, mode: str) -> dict:
    """Run the chain; returns wall seconds, the stages' own seconds, and the mirror's seconds and entries."""
    stats_path = repo.parent / f"stats-{mode}.json"
    store = repo.parent / f"store-{mode}"
    command = [sys.executable, "-c", TIMED_CLI, mode, str(stats_path), "run", "--store", str(store)]
    began = time.perf_counter()
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if result.returncode != 0:
        sys.exit(f"campaign run failed ({result.returncode}) in {repo}:\n{result.stderr[-3000:]}")
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    entries = [
        json.loads(line) for line in (repo / ".campaign/runs" / run_id / "journal.jsonl").read_text().splitlines()
    ]
    work = sum(e["duration_s"] for e in entries if e["kind"] == "stage" and e["state"] == "succeeded")
    return {"wall": wall, "work": work, **json.loads(stats_path.read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,500,2000")
    parser.add_argument("--overhead-stages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="runs per size and mirror; the fastest counts")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    per_entry: dict[str, dict[int, float]] = {"segments": {}, "whole": {}}
    cpu_per_entry: dict[str, dict[int, float]] = {"segments": {}, "whole": {}}
    with tempfile.TemporaryDirectory() as tmp:
        overhead_repo = make_repo(Path(tmp) / "overhead" / "repo", args.overhead_stages)
        overhead = min(
            (timed_run(overhead_repo, "segments") for _ in range(args.repeat)),
            key=lambda stats: stats["wall"] - stats["work"],
        )
        for size in sizes:
            repo = make_repo(Path(tmp) / f"chain{size}" / "repo", size)
            for mode in per_entry:
                # The least disturbed of a few runs: other work on the machine only ever adds time.
                runs = [timed_run(repo, mode) for _ in range(args.repeat)]
                per_entry[mode][size] = min(stats["seconds"] / stats["entries"] for stats in runs) * 1000
                cpu_per_entry[mode][size] = min(stats["cpu"] / stats["entries"] for stats in runs) * 1000
    harness_ms = (overhead["wall"] - overhead["work"]) / args.overhead_stages * 1000
    print(
        f"{args.overhead_stages}-stage chain of `true`: wall {overhead['wall']:.2f} s, stages' own work "
        f"{overhead['work']:.2f} s; harness {harness_ms:.2f} ms per stage (goal ≤ {GOAL_MS_PER_STAGE} ms): "
        f"ratio to goal {harness_ms / GOAL_MS_PER_STAGE:.2f}"
    )
    for title, table in (("wall", per_entry), ("CPU (steadier on a busy machine)", cpu_per_entry)):
        print(f"journal mirroring, {title}, ms per entry:  " + "  ".join(f"{size:>6} stages" for size in sizes))
        for mode, label in (("segments", "segments (now)     "), ("whole", "whole file (before)")):
            costs = table[mode]
            print(
                f"  {label} "
                + "  ".join(f"{costs[size]:13.3f}" for size in sizes)
                + f"   ratio {sizes[-1]} / {sizes[0]}: {costs[sizes[-1]] / costs[sizes[0]]:.2f}"
            )
    now, before = per_entry["segments"][sizes[-1]], per_entry["whole"][sizes[-1]]
    print(f"at {sizes[-1]} stages the segment mirror costs {now / before:.3f}x the whole-file mirror per entry")


if __name__ == "__main__":
    main()
