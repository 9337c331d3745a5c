"""The Rust fixture for prebuilds: it builds with cargo (all features), both bench binaries print their
JSON line, and its campaign runs end to end with the real CLI in a fresh git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import FIXTURE, campaign, cargo_env, fixture_repo, tool

BINARIES = {"bench-simd": "simd", "bench-alloc": "alloc-heavy"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release build of the whole workspace with every feature, in a target dir of its own."""
    cargo = tool("cargo", install_hint="a Rust toolchain: rustup")
    target = tmp_path_factory.mktemp("cargo-target")
    result = subprocess.run(
        [cargo, "build", "--release", "--workspace", "--all-features", "--locked"],
        cwd=FIXTURE,
        env=cargo_env(CARGO_TARGET_DIR=str(target)),
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return target / "release"


def bench(binary: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], check=False, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("binary", sorted(BINARIES))
def test_each_bench_binary_prints_one_json_line(built: Path, binary: str):
    result = bench(built / binary, "--sf", "0.01")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    record = json.loads(line)
    assert record["name"] == binary and record["sf"] == 0.01
    assert BINARIES[binary] in record["features"]
    assert isinstance(record["result"], int) and record["elapsed_ms"] >= 0
    again = json.loads(bench(built / binary, "--sf", "0.01").stdout)
    assert again["result"] == record["result"], "the work is deterministic"


def test_a_bad_scale_factor_is_refused(built: Path):
    result = bench(built / "bench-simd", "--sf", "zero")
    assert result.returncode == 2 and "--sf must be a positive number" in result.stderr


def test_each_binary_needs_its_feature():
    manifest = (FIXTURE / "bench" / "Cargo.toml").read_text()
    for binary, feature in BINARIES.items():
        assert f'name = "{binary}"' in manifest and f'required-features = ["{feature}"]' in manifest


def test_the_fixture_campaign_plans_and_runs_end_to_end(tmp_path: Path):
    tool("cargo", install_hint="a Rust toolchain: rustup")
    repo = fixture_repo(tmp_path)
    plan = campaign(repo, "plan", "sf0.01,sf1", "--json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    runs = {r["id"]: r for r in json.loads(plan.stdout)["stage_runs"]}
    assert list(runs) == ["build", "bench-simd[sf0.01]", "bench-alloc[sf0.01]", "bench-simd[sf1]", "bench-alloc[sf1]"]
    assert runs["build"]["kind"] == "build" and runs["bench-simd[sf1]"]["needs"] == ["build"]

    result = campaign(repo, "run", "sf0.01,sf1")
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    outputs = repo / ".campaign" / "store" / "runs" / run_id / "outputs" / "results"
    for sf in ("0.01", "1"):
        for binary in BINARIES:
            records = [json.loads(line) for line in (outputs / f"sf{sf}" / f"{binary}.jsonl").read_text().splitlines()]
            assert len(records) == 3, "vars.iterations runs of the binary"
            assert {r["name"] for r in records} == {binary} and {r["sf"] for r in records} == {float(sf)}
