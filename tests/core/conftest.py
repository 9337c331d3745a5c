"""Fixtures for the core tests: a real git repository holding a small campaign."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# A small campaign that exercises the runner without TPC-H: fast, real subprocesses.
TOY_CAMPAIGN = """\
name: toy
scale_factors: [0.01, 1, 10]
default_selection: sf0.01
vars: {greeting: hello}
stages:
  - name: gen
    kind: data
    per: scale_factor
    run: bash scripts/gen.sh {{ sf }} {{ output_dir }}/data/sf{{ sf }}
    produces: ["data/sf{{ sf }}"]
  - name: bench
    kind: bench
    per: scale_factor
    needs: [gen]
    run: python scripts/bench.py {{ output_dir }}/data/sf{{ sf }} {{ output_dir }}/results/sf{{ sf }}/toy.jsonl
    incremental: "results/sf{{ sf }}/toy.jsonl"
  - name: report
    kind: validate
    needs: [bench]
    run: ls -R {{ output_dir }}/results > {{ output_dir }}/report.txt && echo "{{ vars.greeting }} $CAMPAIGN_RUN_ID"
    produces: [report.txt]
"""

GEN_SH = """\
#!/usr/bin/env bash
set -euo pipefail
mkdir -p "$2"
echo "sf=$1 env_sf=$CAMPAIGN_SF" > "$2/table.txt"
"""

BENCH_PY = """\
import json, os, sys
data, results = sys.argv[1], sys.argv[2]
if not os.path.exists(os.path.join(data, "table.txt")):
    sys.exit(f"data not found in {data}")
os.makedirs(os.path.dirname(results), exist_ok=True)
with open(results, "w") as out:
    for q in range(1, 4):
        out.write(json.dumps({"query": f"q{q}", "sf": os.environ["CAMPAIGN_SF"]}) + "\\n")
        out.flush()
print("bench done")
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, files: dict[str, str], *, commit: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (root / ".gitignore").write_text(".campaign/\n")
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "campaign")
    return root


@pytest.fixture
def toy_repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": BENCH_PY}
    )


def run_cli(repo: Path, *args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `campaign` command in a subprocess, as a user runs it, from the repository."""
    return subprocess.run(
        [sys.executable, "-m", "campaign.cli", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
