"""`terraform validate` and `terraform test` (terraform/tests/, terraform/github-oidc/tests/: mock_provider
"aws", nothing created) of both modules, with the real CLI and the provider from the mirror (tf_moto).

The per-run module's tests read the variables campaign passes: terraform.tfvars.json written here by
campaign/targets/aws/infra.py's module_variables, exactly as a run's workspace gets them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from campaign.targets.aws import infra
from campaign.targets.aws.settings import AwsSettings

from .conftest import REPO_ROOT

MODULES = {"run": REPO_ROOT / "terraform", "github-oidc": REPO_ROOT / "terraform" / "github-oidc"}


def terraform(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["terraform", *args, "-no-color"], cwd=workdir, capture_output=True, text=True, timeout=timeout
    )


def copy_module(source: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for path in source.glob("*.tf"):
        shutil.copy2(path, dest / path.name)
    shutil.copytree(source / "tests", dest / "tests")
    return dest


def what_campaign_passes() -> dict:
    settings = AwsSettings(bucket="campaign-123456789012-us-east-1")
    return infra.module_variables(
        settings,
        run_id="20261122T181500Z-1a2b3c4-k3f9",
        campaign="tpch",
        commit="0123456789abcdef0123456789abcdef01234567",
        user_data="#!/bin/bash\nset -euo pipefail\n",
        create_bucket=False,
    )


@pytest.fixture(scope="module")
def initialized(tf_moto_session, tmp_path_factory) -> dict[str, Path]:
    """Each module copied (with its tests) and `terraform init`-ed once, providers from the mirror."""
    root = tmp_path_factory.mktemp("tf-cli")
    copies = {name: copy_module(source, root / name) for name, source in MODULES.items()}
    (copies["run"] / "terraform.tfvars.json").write_text(json.dumps(what_campaign_passes()))
    with tf_moto_session.activated():
        for name, workdir in copies.items():
            result = terraform(workdir, "init", "-backend=false", "-input=false")
            assert result.returncode == 0, f"terraform init of {name}:\n{result.stdout}{result.stderr}"
        yield copies


@pytest.mark.parametrize("name", MODULES)
def test_terraform_validate(initialized, tf_moto_session, name):
    with tf_moto_session.activated():
        result = terraform(initialized[name], "validate")
    assert result.returncode == 0 and "Success!" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("name", MODULES)
def test_terraform_test_with_a_mocked_provider(initialized, tf_moto_session, name):
    with tf_moto_session.activated():
        result = terraform(initialized[name], "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout and "Success!" in result.stdout, result.stdout


def test_a_removed_validation_fails_terraform_test(initialized, tf_moto_session, tmp_path: Path):
    """The tests above can fail: without the prefix validation, its expect_failures runs fail."""
    workdir = tmp_path / "run"
    shutil.copytree(initialized["run"], workdir, symlinks=True)
    variables = (workdir / "variables.tf").read_text()
    start = variables.index("  # No leading, trailing or doubled slash")
    end = variables.index("}\n", variables.index("error_message", start)) + 2
    (workdir / "variables.tf").write_text(variables[:start] + variables[end:])
    tests = (workdir / "tests" / "variables.tftest.hcl").read_text()
    header = tests[: tests.index('run "what_campaign_passes_plans"')]  # the mocked provider
    start = tests.index('run "refuses_a_prefix_with_a_leading_slash"')
    (workdir / "tests" / "prefix.tftest.hcl").write_text(header + tests[start : tests.index("\nrun ", start + 1)])
    with tf_moto_session.activated():
        result = terraform(workdir, "test", "-filter=tests/prefix.tftest.hcl")
    assert result.returncode != 0
    assert 'refuses_a_prefix_with_a_leading_slash"... fail' in result.stdout, result.stdout
    assert "The checkable object, var.prefix, was expected to report an error but did" in result.stderr
