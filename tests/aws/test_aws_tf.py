"""The python-terraform wrapper against the real terraform CLI, on a module of built-in terraform_data
resources (tests/aws/fixtures/tf_data: no provider download)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from campaign.targets.aws.tf import LOG_FILE, TerraformFailed, TerraformRunner

FIXTURE = Path(__file__).parent / "fixtures" / "tf_data"
USER_DATA = '#!/bin/bash\nset -euo pipefail\necho "${HOME}" {{ not jinja }}\n'


def workspace(tmp_path: Path, **variables) -> Path:
    workdir = tmp_path / "ws"
    shutil.copytree(FIXTURE, workdir)
    values = {"run_id": "r1", "instance_count": 2, "user_data": USER_DATA, **variables}
    (workdir / "terraform.tfvars.json").write_text(json.dumps(values))
    return workdir


@pytest.fixture(autouse=True)
def _needs_terraform():
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH; these tests run the real CLI (install Terraform >= 1.5)")


def test_init_plan_apply_output_destroy_on_the_real_cli(tmp_path: Path):
    import hashlib

    runner = TerraformRunner(workspace(tmp_path))
    runner.init()
    summary = runner.plan()
    assert (summary.add, summary.change, summary.destroy) == (2, 0, 0)
    runner.apply()  # a saved plan: no approval prompt, no stray -var-file
    outputs = runner.output()
    assert len(outputs["instance_ids"]) == 2 and all(outputs["instance_ids"])
    assert outputs["run_id"] == "r1"
    assert outputs["user_data_sha256"] == hashlib.sha256(USER_DATA.encode()).hexdigest()  # passed verbatim
    assert runner.state_list() == ["terraform_data.runner[0]", "terraform_data.runner[1]"]
    assert runner.plan() == type(summary)(0, 0, 0)  # nothing left to do: exit 0 and 2 both accepted
    runner.destroy()  # -auto-approve, never the removed -force
    assert runner.state_list() == []
    log = (runner.workdir / LOG_FILE).read_text()
    assert "terraform apply -> exit 0" in log and "Destroy complete! Resources: 2 destroyed." in log


def test_state_rm_forgets_a_resource_that_destroy_then_keeps(tmp_path: Path):
    runner = TerraformRunner(workspace(tmp_path))
    runner.init()
    runner.plan()
    runner.apply()
    runner.state_rm(["terraform_data.runner[1]"])
    runner.destroy()
    assert runner.state_list() == []
    assert "Resources: 1 destroyed." in (runner.workdir / LOG_FILE).read_text()


def test_a_failure_names_the_command_workspace_and_log(tmp_path: Path):
    runner = TerraformRunner(workspace(tmp_path, instance_count="many"))
    runner.init()
    with pytest.raises(TerraformFailed) as failure:
        runner.plan()
    message = str(failure.value)
    assert f"terraform plan failed (exit 1) in {runner.workdir}" in message
    assert "instance_count" in message
    assert f"Full output: {runner.workdir / LOG_FILE}" in message


def test_output_before_apply_is_empty_not_a_crash(tmp_path: Path):
    runner = TerraformRunner(workspace(tmp_path))
    runner.init()
    assert runner.output() == {}


def test_a_signal_during_apply_lets_terraform_finish_then_interrupts(tmp_path: Path):
    """SIGTERM to this process mid-apply: the apply completes and saves its state, then KeyboardInterrupt."""
    workdir = workspace(tmp_path)
    (workdir / "slow.tf").write_text(
        'resource "terraform_data" "slow" {\n  provisioner "local-exec" {\n    command = "sleep 2"\n  }\n}\n'
    )
    runner = TerraformRunner(workdir)
    runner.init()
    runner.plan()
    timer = threading.Timer(0.8, os.kill, args=(os.getpid(), signal.SIGTERM))
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            runner.apply()
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert "terraform_data.slow" in runner.state_list()  # Terraform was not abandoned half-way
    runner.destroy()
    assert runner.state_list() == []
