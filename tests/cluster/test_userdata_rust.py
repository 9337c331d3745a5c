"""The instance installs a Rust toolchain exactly when the plan compiles there (today's fallback build failed
with 127: no cargo on Amazon Linux by default)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from campaign.preflight.planner import make_plan
from campaign.targets.aws.target import builds_here
from campaign.targets.aws.userdata import UserdataParams, render_userdata
from tests.core.conftest import REPO_ROOT, make_repo

PARAMS = dict(
    run_id="r1",
    campaign="c",
    commit="0" * 40,
    repo_url="https://example.invalid/r.git",
    store_url="s3://b/p",
    region="us-east-1",
    watchdog_minutes=60,
)
SHELLCHECK = REPO_ROOT / ".venv" / "bin" / "shellcheck"

BUILD_CAMPAIGN = """\
name: rusty
scale_factors: [1]
stages:
  - name: build
    kind: build
    run: "{{ cargo_build }}"
    build_output: [target/release]
  - name: bench
    kind: bench
    needs: [build]
    run: target/release/bench
"""


def test_the_toolchain_is_installed_only_when_asked():
    with_rust = render_userdata(UserdataParams(**PARAMS, rust_toolchain=True))
    without = render_userdata(UserdataParams(**PARAMS))
    assert "dnf install -y -q rust cargo" in with_rust
    assert "rust cargo" not in without
    checked = subprocess.run([str(SHELLCHECK), "-s", "bash", "-"], input=with_rust, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_a_plan_with_a_build_stage_and_no_prebuilt_builds_here(tmp_path: Path, monkeypatch):
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": BUILD_CAMPAIGN})
    monkeypatch.chdir(repo)
    plan, _ = make_plan(repo / "campaign.yaml", None, allow_dirty=False)
    assert builds_here(plan)
    tpch, _ = make_plan(REPO_ROOT / "campaign.yaml", None, allow_dirty=True)
    assert not builds_here(tpch)  # no build stage: nothing to compile
