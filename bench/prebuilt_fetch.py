"""What a prebuilt saves: the Rust fixture's build stage compiled cold ÷ fetched from `campaign prebuild`.

Prints, measured in one run on the fixture (tests/fixtures/rust-workspace) committed in a fresh git repo,
with a throw-away state folder and local-folder store:
- cold build: `campaign run SELECTION` with no prebuilt in the store; the build stage's duration from
  the journal (build_source "built here", a fresh checkout, no CARGO_TARGET_DIR) and the run's wall;
- `campaign prebuild` into that store, then REPEAT runs of the same selection with cargo removed from
  PATH (so nothing can compile); the median build stage duration (build_source "prebuilt": download,
  sha256 check, extraction) and the median wall;
- hit ÷ cold for the build stage (target ≤ 0.1) and for the whole run's wall; the tarball's size.
Usage: python bench/prebuilt_fetch.py [--selection sf0.01] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.filesize import decimal

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "rust-workspace"
CAMPAIGN = str(Path(sys.executable).parent / "campaign")
TARGET = 0.1
# What could make the "cold" build warm (a shared target dir, a compiler cache) or differ from a user's.
STRIPPED = (
    "CAMPAIGN_",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_",
    "CARGO_INCREMENTAL",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
)


def bench_env(repo: Path, *, without_cargo: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    env.update(CARGO_NET_OFFLINE="true", CARGO_TERM_COLOR="never", CAMPAIGN_HOME=str(repo / ".campaign"))
    if without_cargo:
        kept = [
            d
            for d in env.get("PATH", "").split(os.pathsep)
            if d and not any(Path(d, tool).exists() for tool in ("cargo", "rustc"))
        ]
        env["PATH"] = os.pathsep.join(kept)
        for tool in ("cargo", "rustc"):
            if shutil.which(tool, path=env["PATH"]):
                sys.exit(f"could not take {tool} off PATH: still found at {shutil.which(tool, path=env['PATH'])}")
    return env


def fixture_repo(tmp: Path) -> Path:
    """The fixture's files (no build output) committed in a fresh git repository."""
    repo = tmp / "repo"
    shutil.copytree(FIXTURE, repo, ignore=shutil.ignore_patterns("target", ".campaign"))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "rust fixture"]):
        subprocess.run(git + command, cwd=repo, check=True, capture_output=True, timeout=60)
    return repo


def campaign(repo: Path, *args: str, without_cargo: bool = False) -> tuple[subprocess.CompletedProcess, float]:
    began = time.perf_counter()
    result = subprocess.run(
        [CAMPAIGN, *args],
        cwd=repo,
        env=bench_env(repo, without_cargo=without_cargo),
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - began
    if result.returncode != 0:
        where = " (cargo off PATH)" if without_cargo else ""
        sys.exit(
            f"campaign {' '.join(args)}{where} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result, wall


def build_stage(
    repo: Path, selection: str, store: Path, *, expect: str, without_cargo: bool = False
) -> tuple[float, float]:
    """One `campaign run`: the build stage's duration from the journal (checked to be `expect`) and the wall."""
    result, wall = campaign(repo, "run", selection, "--store", str(store), without_cargo=without_cargo)
    first = result.stdout.splitlines()[0] if result.stdout else ""
    if not first.startswith("run: "):
        sys.exit(f"campaign run printed no run id first; stdout began: {first!r}")
    run_dir = repo / ".campaign" / "runs" / first.removeprefix("run: ")
    entries = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]
    builds = [
        e
        for e in entries
        if e.get("kind") == "stage" and e.get("stage_run") == "build" and e.get("state") == "succeeded"
    ]
    if not builds:
        sys.exit(f"no succeeded build stage in {run_dir / 'journal.jsonl'}")
    build = builds[-1]
    if build.get("build_source") != expect:
        sys.exit(
            f"the build stage's build_source is {build.get('build_source')!r}, expected {expect!r} "
            f"(reason: {build.get('prebuilt_unusable', '-')}); journal {run_dir / 'journal.jsonl'}"
        )
    log = (run_dir / build["log"]).read_text(errors="replace")
    if expect == "built here" and "Compiling " not in log:
        sys.exit(f"the cold build compiled nothing (no 'Compiling' in {run_dir / build['log']}): not cold")
    if expect == "prebuilt" and "Compiling " in log:
        sys.exit(f"the prebuilt hit compiled something: see {run_dir / build['log']}")
    return build["duration_s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--selection", default="sf0.01")
    parser.add_argument("--repeat", type=int, default=3, help="prebuilt-hit runs; the median is reported")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if shutil.which("cargo", path=bench_env(REPO_ROOT)["PATH"]) is None:
        sys.exit("cargo is not on PATH; the cold build needs a Rust toolchain (rustup)")
    with tempfile.TemporaryDirectory(prefix="bench-prebuilt-") as tmp:
        repo = fixture_repo(Path(tmp))
        store = Path(tmp) / "store"
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
        ).stdout.strip()

        cold, cold_wall = build_stage(repo, args.selection, store, expect="built here")
        _, prebuild_wall = campaign(repo, "prebuild", "--store", str(store))
        metadata_path = store / "prebuilt" / commit / platform.machine() / "target.json"
        if not metadata_path.is_file():
            sys.exit(f"campaign prebuild succeeded but wrote no {metadata_path}")
        metadata = json.loads(metadata_path.read_text())
        size = metadata["tarball"]["size"]
        on_disk = (store / "prebuilt" / commit / platform.machine() / "target.tar.gz").stat().st_size
        if on_disk != size:
            sys.exit(f"target.json says the tarball is {size} bytes; the store holds {on_disk}")

        hits = [
            build_stage(repo, args.selection, store, expect="prebuilt", without_cargo=True) for _ in range(args.repeat)
        ]
    hit = statistics.median(seconds for seconds, _ in hits)
    hit_wall = statistics.median(wall for _, wall in hits)

    print(f"rust fixture, {args.selection}, commit {commit[:12]}; store a local folder")
    print(f"  cold build (built here, fresh checkout):      build stage {cold:7.3f} s   run wall {cold_wall:6.2f} s")
    print(
        f"  prebuilt hit (cargo off PATH), median of {args.repeat}:   build stage {hit:7.3f} s   "
        f"run wall {hit_wall:6.2f} s"
    )
    print(
        f"    each hit: build stage {', '.join(f'{s:.3f}' for s, _ in hits)} s; "
        f"run wall {', '.join(f'{w:.2f}' for _, w in hits)} s"
    )
    print(
        f"  campaign prebuild (fresh clone, build, pack, store): wall {prebuild_wall:.2f} s, "
        f"its build {metadata.get('build_seconds', 0):.3f} s"
    )
    print(f"  tarball: {size} bytes ({decimal(size)})")
    print(f"  run wall ratio (hit / cold): {hit_wall / cold_wall:.3f}")
    print(f"  build ratio (prebuilt hit / cold build): {hit / cold:.4f}  (target ≤ {TARGET})")
    if hit / cold > TARGET:
        print(f"  above target: the fetch took {hit:.3f} s against a {cold:.3f} s build", file=sys.stderr)


if __name__ == "__main__":
    main()
