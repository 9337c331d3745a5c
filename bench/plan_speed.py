"""How long `campaign plan` takes: the default campaign (target ≤ 0.3 s) and a generated 500-stage one (≤ 1 s).

Runs the real CLI as a user does (a new process each time, imports included) and prints the median
of several runs and its ratio to the target. Usage: python bench/plan_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_DEFAULT_S, TARGET_500_S = 0.3, 1.0


def generated_campaign(stages: int) -> str:
    """Half per-SF stages in chains of ten, half global stages each needing one per-SF stage."""
    lines = ["name: generated", "scale_factors: [0.01, 1, 10]", "default_selection: sf1,sf10", "stages:"]
    for i in range(stages):
        per_sf = i % 2 == 0
        needs = f"[s{i - 2}]" if per_sf and i % 20 else ("[s" + str(i - 1) + "]" if not per_sf else "[]")
        out = f"out/s{i}/sf{{{{ sf }}}}.json" if per_sf else f"out/s{i}.json"
        lines += [
            f"  - name: s{i}",
            "    kind: bench",
            f"    needs: {needs}",
            f"    run: bash scripts/s{i}.sh {{{{ output_dir }}}}/{out}",
            f'    produces: ["{out}"]',
        ] + (["    per: scale_factor"] if per_sf else [])
    return "\n".join(lines) + "\n"


def make_generated_repo(root: Path, stages: int) -> Path:
    (root / "scripts").mkdir(parents=True)
    (root / "campaign.yaml").write_text(generated_campaign(stages))
    for i in range(stages):
        (root / "scripts" / f"s{i}.sh").write_text('#!/usr/bin/env bash\nmkdir -p "$(dirname "$1")"; touch "$1"\n')
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "g"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    return root


def time_plan(cwd: Path, selection: str, repeat: int) -> float:
    command = [str(Path(sys.executable).parent / "campaign"), "plan", selection]
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        samples.append(time.perf_counter() - began)
        if result.returncode not in (0, 3):  # 3: preflight would refuse, still a full plan
            sys.exit(f"campaign plan failed in {cwd}:\n{result.stderr}")
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    default_s = time_plan(REPO_ROOT, "sf1", args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        big_s = time_plan(make_generated_repo(Path(tmp), 500), "sf1,sf10", args.repeat)
    print(
        f"plan, default campaign (sf1):        median {default_s:.3f} s  ratio to target 0.3 s: {default_s / TARGET_DEFAULT_S:.2f}"
    )
    print(
        f"plan, 500-stage campaign (sf1,sf10): median {big_s:.3f} s  ratio to target 1.0 s: {big_s / TARGET_500_S:.2f}"
    )


if __name__ == "__main__":
    main()
