"""What the data cache saves: TPC-H generation at SF1 (tpchgen-cli) against a verified fetch of its cache entry.

Measured side by side in one run, in a fresh git repository holding the default campaign's generation stage
(stages/tpch/generate.sh, `cache: true` as in campaign.yaml) with a throw-away state folder and local-folder store:
- generate: `campaign run sf1` with an empty cache: the data stage generates, then stores the entry;
- REPEAT runs of the same selection: each data stage is a cache hit (checked in the journal: `cached: <key>`):
  key, download into a staging folder, sha256 of every file against the manifest, move into place;
- per run the data stage's wall time, from its `running` to its `succeeded` journal entry (a miss includes storing
  the entry; a hit includes computing the key and verifying), and its process time (tpchgen-cli, or the fetch);
- the ratio hit / generate (goal ≤ 0.05 at SF1 on the local store).
Usage: python bench/data_cache.py [--sf 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rich.filesize import decimal

REPO_ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = str(Path(sys.executable).parent / "campaign")
GOAL = 0.05
CAMPAIGN_FILE = """\
name: data-cache-bench
scale_factors: [0.01, 0.1, 1, 10]
stages:
  - name: tpch-generate
    kind: data
    per: scale_factor
    run: bash stages/tpch/generate.sh {{ sf }} {{ output_dir }}/data/sf{{ sf }}
    produces: ["data/sf{{ sf }}"]
    upload: false
    cache: true
    cache_inputs: {tools: ["tpchgen-cli --version"], files: [stages/tpch/generate.sh]}
"""


def bench_repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    (repo / "stages" / "tpch").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "stages" / "tpch" / "generate.sh", repo / "stages" / "tpch" / "generate.sh")
    (repo / "campaign.yaml").write_text(CAMPAIGN_FILE)
    (repo / ".gitignore").write_text(".campaign/\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "data cache bench"]):
        subprocess.run(git + command, cwd=repo, check=True, capture_output=True, timeout=60)
    return repo


def data_stage(repo: Path, sf: str, store: Path, *, expect_hit: bool) -> dict:
    """One `campaign run sfSF`: the data stage's wall and process seconds, checked to be a hit or a miss."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")}
    env["CAMPAIGN_HOME"] = str(repo / ".campaign")
    began = time.perf_counter()
    result = subprocess.run(
        [CAMPAIGN, "run", f"sf{sf}", "--store", str(store)], cwd=repo, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if result.returncode != 0:
        sys.exit(f"campaign run sf{sf} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    run_dir = repo / ".campaign" / "runs" / result.stdout.splitlines()[0].removeprefix("run: ")
    entries = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]
    stage = [e for e in entries if e.get("stage_run") == f"tpch-generate[sf{sf}]"]
    running, done = stage[0], stage[-1]
    if done["state"] != "succeeded" or bool(done.get("cached")) != expect_hit:
        sys.exit(f"expected a cache {'hit' if expect_hit else 'miss'}, the journal says {done}")
    seconds = (datetime.fromisoformat(done["ts"]) - datetime.fromisoformat(running["ts"])).total_seconds()
    shutil.rmtree(run_dir / "checkout")  # the disk: each run holds its own copy of the data otherwise
    return {"stage_s": seconds, "process_s": done["duration_s"], "wall_s": wall, "key": done.get("cached")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sf", default="1")
    parser.add_argument("--repeat", type=int, default=3, help="cache-hit runs; the median is reported")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-data-cache-") as tmp:
        repo, store = bench_repo(Path(tmp)), Path(tmp) / "store"
        miss = data_stage(repo, args.sf, store, expect_hit=False)
        hits = []
        for _ in range(args.repeat):
            hits.append(data_stage(repo, args.sf, store, expect_hit=True))
        size = sum(p.stat().st_size for p in (store / "cache").rglob("*") if p.is_file())
    hit = statistics.median(h["stage_s"] for h in hits)
    print(f"TPC-H SF{args.sf} data stage (tpchgen-cli), store a local folder; cache entry {decimal(size)}")
    print(
        f"  generate (cache miss):   stage {miss['stage_s']:7.2f} s  (tpchgen {miss['process_s']:.2f} s, then the "
        f"entry stored)   run wall {miss['wall_s']:6.2f} s"
    )
    print(
        f"  verified fetch (hit), median of {args.repeat}: stage {hit:7.3f} s  "
        f"(each: {', '.join(format(h['stage_s'], '.3f') for h in hits)} s; fetch alone "
        f"{statistics.median(h['process_s'] for h in hits):.3f} s)   run wall "
        f"{statistics.median(h['wall_s'] for h in hits):6.2f} s"
    )
    print(f"  ratio hit / generate, data stage: {hit / miss['process_s']:.4f}  (goal ≤ {GOAL})")
    print(f"  ratio hit / (generate + store), data stage: {hit / miss['stage_s']:.4f}")
    if hit / miss["process_s"] > GOAL:
        print(
            f"  above the goal: the fetch took {hit:.3f} s against a {miss['process_s']:.3f} s generate",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
