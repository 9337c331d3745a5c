"""The consolidated build and the CI-overlap verdict: one cargo build of the features' union, and
stages that repeat CI's unit tests refused on paid machines unless they say why (ci_overlap)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import campaign.spec.cargo as build
from campaign.planning.graph import expand
from campaign.preflight.planner import make_plan
from campaign.spec.load import load_campaign
from tests.core.conftest import make_repo

SCENARIOS = Path(__file__).parent / "scenarios" / "build"
CAMPAIGN_BIN = Path(sys.executable).parent / "campaign"

BUILD = "cargo build --release --workspace --locked --features alloc-heavy,simd"
TEST_BINARIES = "cargo test --no-run --release --workspace --locked --features alloc-heavy,simd"


def rendered_commands(spec) -> dict[str, str]:
    """Each stage run's command as it would run (placeholder dirs), by stage run id."""
    runs = expand(spec, (spec.scale_factors[0],))
    return {run.id: run.command(spec, run_id="RUN-ID", output_dir="/OUTPUT", work_dir="/WORK") for run in runs}


def line_of_stage(path: Path, name: str) -> int:
    """The campaign file line of `- name: <name>`: where overlap details must point."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == f"- name: {name}")


def scenario_repo(tmp_path: Path, scenario: str) -> Path:
    """A committed git repository holding the scenario file (and tests/, which `pytest tests/` references)."""
    return make_repo(
        tmp_path / "repo",
        {scenario: (SCENARIOS / scenario).read_text(), "tests/test_unit.py": "def test_one():\n    assert True\n"},
    )


def verdict(plan, check: str):
    found = [v for v in plan.verdicts if v.check == check]
    assert len(found) == 1, f"expected one {check!r} verdict in {[v.check for v in plan.verdicts]}"
    return found[0]


# --- the feature union and the one build -------------------------------------------------------------------


def test_features_of_all_stages_are_built_once_as_a_sorted_union():
    spec = load_campaign(SCENARIOS / "features.yaml")
    assert spec.features == ("alloc-heavy", "simd")
    commands = rendered_commands(spec)
    assert commands["build"] == BUILD
    assert spec.cargo_build == BUILD
    assert "cargo test" not in commands["build"]  # no stage runs test binaries: none are compiled


def test_features_template_renders_the_comma_separated_union():
    spec = load_campaign(SCENARIOS / "features.yaml")
    assert rendered_commands(spec)["scan"] == 'echo "built with alloc-heavy,simd" && target/release/scan'


def test_a_stage_running_cargo_test_makes_the_build_compile_the_test_binaries_too():
    spec = load_campaign(SCENARIOS / "features_test_binaries.yaml")
    assert spec.features == ("alloc-heavy", "simd")
    assert rendered_commands(spec)["build"] == f"{BUILD} && {TEST_BINARIES}"


def test_a_build_without_features_passes_no_features_flag(tmp_path: Path):
    path = tmp_path / "plain.yaml"
    path.write_text(
        "name: plain\nscale_factors: [1]\nstages:\n"
        '  - {name: build, kind: build, run: "{{ cargo_build }}", build_output: [target/release]}\n'
        "  - {name: bench, kind: bench, needs: [build], run: target/release/bench}\n"
    )
    spec = load_campaign(path)
    assert spec.features == ()
    assert rendered_commands(spec)["build"] == "cargo build --release --workspace --locked"


def test_plan_json_shows_the_build_command_inputs_and_each_stage_features(tmp_path: Path):
    repo = scenario_repo(tmp_path, "features.yaml")
    plan, _ = make_plan(repo / "features.yaml", None, allow_dirty=False)
    stage_runs = {entry["id"]: entry for entry in plan.to_dict()["stage_runs"]}
    assert stage_runs["scan"]["features"] == ["simd"]
    assert stage_runs["join"]["features"] == ["alloc-heavy", "simd"]
    assert "features" not in stage_runs["build"]


# --- what compiles, what runs unit tests --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, found",
    [
        ("cargo run --release --bin bench", "cargo run"),
        ("cargo +nightly build --release", "cargo +nightly build"),
        ("cargo bench", "cargo bench"),
        ("cd crates/x && cargo   build", "cargo build"),
    ],
)
def test_compiles_detects_cargo_subcommands_that_compile(command: str, found: str):
    assert build.compiles(command) == found


@pytest.mark.parametrize("command", ["cargo test", "target/release/x --iterations 3", "cargo tree", "cargo fmt"])
def test_compiles_ignores_commands_that_do_not_compile(command: str):
    assert build.compiles(command) is None


@pytest.mark.parametrize(
    "command, runner",
    [
        ("cargo test", "cargo test"),
        ("cargo test --release -- --nocapture", "cargo test"),
        ("cargo nextest run", "cargo test"),
        ("pytest", "pytest"),
        ("pytest tests/", "pytest"),
        ("python -m pytest -q", "pytest"),
        ("python3.11 -m pytest", "pytest"),
        ("go test ./...", "go test"),
        ("cd build && ctest --output-on-failure", "ctest"),
        ("npm test", "npm test"),
        ("target/release/bench; cargo test", "cargo test"),
    ],
)
def test_test_runner_detects_unit_test_runners(command: str, runner: str):
    assert build.test_runner(command) == runner


@pytest.mark.parametrize(
    "command",
    [
        "cargo test --no-run",
        "cargo test --no-run --release --workspace --locked",
        "cargo build && target/release/x",
        "target/release/bench --sf 10",
        "python scripts/bench.py",
    ],
)
def test_test_runner_ignores_commands_that_run_no_unit_tests(command: str):
    assert build.test_runner(command) is None


def test_only_rust_test_runner_is_considered_for_test_binaries():
    assert build.test_runner("pytest tests/", only_rust=True) is None
    assert build.test_runner("cargo nextest run", only_rust=True) == "cargo test"


# --- the CI-overlap verdict ---------------------------------------------------------------------------------


def test_overlapping_stages_are_allowed_locally_each_listed(tmp_path: Path):
    repo = scenario_repo(tmp_path, "ci_overlap.yaml")
    plan, _ = make_plan(repo / "ci_overlap.yaml", None, allow_dirty=False, target="local")
    found = verdict(plan, "ci overlap")
    assert found.ok and not found.refuses
    assert plan.refusals == []
    assert found.summary == "3 stage(s) repeat CI's unit tests, allowed locally"
    assert len(found.details) == 3
    by_stage = {detail.split()[1]: detail for detail in found.details}
    assert set(by_stage) == {"unit", "py-tests", "avx-tests"}  # not build (--no-run), not bench
    assert all(detail.startswith("allowed  ") for detail in found.details)
    assert "is of kind test" in by_stage["unit"]
    assert "runs pytest" in by_stage["py-tests"]
    assert "ci_overlap: needs AVX-512 hardware" in by_stage["avx-tests"]


def test_overlapping_stages_without_ci_overlap_are_refused_on_aws(tmp_path: Path):
    repo = scenario_repo(tmp_path, "ci_overlap.yaml")
    path = repo / "ci_overlap.yaml"
    plan, _ = make_plan(path, None, allow_dirty=False, target="aws")
    found = verdict(plan, "ci overlap")
    assert not found.ok
    assert plan.refusals == [found]  # the only refusal: the smoke gate and the rest pass
    assert found.summary.startswith("2 stage(s) would re-run CI's unit tests on paid machines: ")
    assert found.summary.endswith("unit, py-tests")
    details = {detail.split()[1]: detail for detail in found.details}
    assert set(details) == {"unit", "py-tests", "avx-tests"}
    for name, what in (("unit", "is of kind test"), ("py-tests", "runs pytest")):
        detail = details[name]
        assert detail.startswith(f"REFUSED  {name} (ci_overlap.yaml:{line_of_stage(path, name)}) {what}: ")
        assert 'ci_overlap: "<why CI cannot run this>"' in detail
    avx = details["avx-tests"]
    assert avx == (
        f"allowed  avx-tests (ci_overlap.yaml:{line_of_stage(path, 'avx-tests')}) runs cargo test; "
        "ci_overlap: needs AVX-512 hardware"
    )
    assert not any("bench" in detail.split()[1] for detail in found.details)


def test_ci_overlap_makes_every_overlapping_stage_allowed_on_aws(tmp_path: Path):
    text = (SCENARIOS / "ci_overlap.yaml").read_text()
    text = text.replace("    kind: test\n", '    kind: test\n    ci_overlap: "runs on the benchmark box only"\n')
    text = text.replace("    run: pytest tests/\n", '    run: pytest tests/\n    ci_overlap: "needs the TPC-H data"\n')
    repo = make_repo(tmp_path / "repo", {"ci_overlap.yaml": text, "tests/test_unit.py": "x = 1\n"})
    plan, _ = make_plan(repo / "ci_overlap.yaml", None, allow_dirty=False, target="aws")
    found = verdict(plan, "ci overlap")
    assert found.ok and plan.refusals == []
    assert found.summary == "3 stage(s) repeat CI's unit tests, allowed on aws"


@pytest.mark.parametrize("target", ["local", "aws"])
def test_a_campaign_without_overlapping_stages_is_ok(tmp_path: Path, target: str):
    repo = scenario_repo(tmp_path, "no_overlap.yaml")
    plan, _ = make_plan(repo / "no_overlap.yaml", None, allow_dirty=False, target=target)
    found = verdict(plan, "ci overlap")
    assert (found.ok, found.summary, found.details) == (True, "no stage repeats CI's unit tests", ())
    assert plan.refusals == []


def test_cli_plan_json_shows_the_overlap_verdicts_and_exits_0_locally(tmp_path: Path):
    repo = scenario_repo(tmp_path, "ci_overlap.yaml")
    env = {key: value for key, value in os.environ.items() if key not in ("CAMPAIGN_STORE", "CAMPAIGN_HOME")}
    env["CAMPAIGN_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [str(CAMPAIGN_BIN), "plan", "-f", "ci_overlap.yaml", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["target"] == "local" and document["refused"] is False
    preflight = {entry["check"]: entry for entry in document["preflight"]}
    overlap = preflight["ci overlap"]
    assert overlap["ok"] is True
    assert overlap["summary"] == "3 stage(s) repeat CI's unit tests, allowed locally"
    assert sorted(detail.split()[1] for detail in overlap["details"]) == ["avx-tests", "py-tests", "unit"]
    assert all(detail.startswith("allowed  ") for detail in overlap["details"])
    stage_runs = {entry["id"]: entry for entry in document["stage_runs"]}
    assert stage_runs["build"]["build"].startswith("build here")  # the empty store has no prebuilt
    assert not (repo / ".campaign").exists()  # CAMPAIGN_HOME, not the repository, holds the state
