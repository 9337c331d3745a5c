"""A small campaign with a cached data stage, and readers of what its runs left: shared by the cache and gc tests.

The data stage writes a random token, so a run that fetched its data holds the token of the run that generated
it, and one that generated anew holds another.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.core.conftest import make_repo, run_cli

CACHED_CAMPAIGN = """\
name: cached
scale_factors: [0.01, 1]
default_selection: sf0.01
stages:
  - name: gen
    kind: data
    per: scale_factor
    run: bash scripts/gen.sh {{ sf }} {{ output_dir }}/data/sf{{ sf }}
    produces: ["data/sf{{ sf }}"]
    upload: false
    cache: true
    cache_inputs: {tools: ["echo toy-tool ${TOY_TOOL_VERSION:-1.0}"], files: [scripts/gen.sh]}
  - name: bench
    kind: bench
    per: scale_factor
    needs: [gen]
    run: python scripts/bench.py {{ needs['gen'].produces[0] }} {{ output_dir }}/results/sf{{ sf }}/toy.jsonl
    incremental: "results/sf{{ sf }}/toy.jsonl"
"""

CACHED_GEN_SH = """\
#!/usr/bin/env bash
set -euo pipefail
mkdir -p "$2/part"
echo "sf=$1 token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')" > "$2/table.txt"
head -c 200000 /dev/urandom > "$2/part/blob.bin"
"""

CACHED_BENCH_PY = """\
import json, os, sys
data, results = sys.argv[1], sys.argv[2]
table = open(os.path.join(data, "table.txt")).read().strip()
if os.environ.get("TOY_BENCH_FAIL") == "1":
    sys.exit("failing on purpose (TOY_BENCH_FAIL=1)")
with open(results, "a") as out:
    out.write(json.dumps({"query": "q1", "ok": True, "elapsed_ms": 1.0, "table": table}) + "\\n")
"""


def cached_repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"campaign.yaml": CACHED_CAMPAIGN, "scripts/gen.sh": CACHED_GEN_SH, "scripts/bench.py": CACHED_BENCH_PY},
    )


def run_ok(repo: Path, *args: str, env: dict | None = None) -> tuple[str, subprocess.CompletedProcess]:
    """`campaign run ARGS`, which must succeed; (run id, result)."""
    result = run_cli(repo, "run", *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()[0].removeprefix("run: "), result


def stage_entries(repo: Path, run_id: str, stage_run: str) -> list[dict]:
    journal = repo / ".campaign" / "runs" / run_id / "journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    return [e for e in entries if e.get("stage_run") == stage_run]


def final_entry(repo: Path, run_id: str, stage_run: str) -> dict:
    return stage_entries(repo, run_id, stage_run)[-1]


def data_token(repo: Path, run_id: str, sf: str = "0.01") -> str:
    return (repo / ".campaign" / "runs" / run_id / "outputs" / "data" / f"sf{sf}" / "table.txt").read_text()


def stage_log(repo: Path, run_id: str, stage_run: str) -> str:
    return (repo / ".campaign" / "runs" / run_id / "logs" / f"{stage_run}.log").read_text()
