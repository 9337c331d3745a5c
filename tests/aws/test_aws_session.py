"""A whole AWS run session — workspace, terraform init/plan/apply, run.json, watch, collect, destroy — with
the real terraform CLI, moto's S3 and the real userdata script. Named stand-in: EC2 cannot boot here, so
tests/aws/fixtures/session_stand_in replaces terraform/ and "boots" the rendered userdata with bash."""

from __future__ import annotations

import getpass
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from campaign.preflight.planner import make_plan
from campaign.run.keys import RunKeys
from campaign.run.record import new_run_id
from campaign.store import open_store
from campaign.targets.aws.auth import Auth
from campaign.targets.aws.infra import workspace_dir
from campaign.targets.aws.session import RunSession
from campaign.targets.aws.settings import AwsSettings
from campaign.targets.aws.target import new_record
from campaign.targets.aws.tf import TerraformRunner
from campaign.targets.aws.userdata import UserdataParams, render_userdata

STAND_IN = Path(__file__).parent / "fixtures" / "session_stand_in"


def make_session(tmp_path: Path, repo: Path, remote: Path, bucket: str, lines: list[str], *, user_data=None):
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the aws CLI of the venv
    settings = AwsSettings(bucket=bucket, prefix="campaigns", poll_interval_s=0.2, max_hours=0.05)
    plan, root = make_plan(repo / "campaign.yaml", "sf0.01", allow_dirty=False, target="aws")
    record = new_record(plan, root, new_run_id(plan.commit), settings.store_url(), keep_going=False)
    shutdown = tmp_path / "shutdown-stand-in"  # records its calls: `-h now` is the instance's last act
    shutdown.write_text(f'#!/bin/bash\necho "$*" >> {tmp_path / "shutdown-calls"}\n')
    shutdown.chmod(0o755)
    script = user_data or render_userdata(
        UserdataParams(
            run_id=record.run_id,
            campaign=record.campaign,
            commit=record.commit,
            repo_url=str(remote),
            store_url=record.store,
            region=settings.region,
            watchdog_minutes=settings.watchdog_minutes,
            bench_user=getpass.getuser(),
            work_root=str(tmp_path / "instance"),
            install_spec="",
            campaign_command=(sys.executable, "-m", "campaign.cli"),
            system_setup=False,
            shutdown_command=str(shutdown),
        )
    )
    return RunSession(
        record=record,
        plan=plan,
        settings=settings,
        auth=Auth(settings),
        state_dir=tmp_path / "state",
        user_data=script,
        create_bucket=False,
        out=lines.append,
        module_dir=STAND_IN,
    )


def wait_for_power_off(tmp_path: Path, timeout_s: float = 60) -> None:
    """The stand-in instance runs userdata in the background; its last upload may follow the watcher's
    verdict. Wait until it powers off, as a real instance would, before the bucket is cleaned up."""
    calls = tmp_path / "shutdown-calls"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if calls.exists() and "-h now" in calls.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"the stand-in instance never powered off ({calls})")


def test_a_session_provisions_watches_collects_and_destroys(s3_bucket, pushed_repo, tmp_path: Path):
    repo, remote = pushed_repo
    lines: list[str] = []
    session = make_session(tmp_path, repo, remote, s3_bucket, lines)
    result = session.run()
    wait_for_power_off(tmp_path)
    assert result.state == "succeeded", "\n".join(lines)
    run_id = session.record.run_id
    assert any(line.startswith("terraform plan: 1 to add, 0 to change, 0 to destroy") for line in lines)
    assert f"destroyed: nothing of run {run_id} is left running" in lines
    collected = tmp_path / "state/runs" / run_id / "outputs/results/sf0.01/toy.jsonl"
    assert collected.read_bytes() == open_store(session.record.store).get_bytes(
        RunKeys(run_id).output("results/sf0.01/toy.jsonl")
    )
    assert TerraformRunner(workspace_dir(tmp_path / "state", run_id)).state_list() == []


def interrupt_when(condition, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_while_watching_still_destroys(s3_bucket, pushed_repo, tmp_path: Path):
    repo, remote = pushed_repo
    lines: list[str] = []
    session = make_session(tmp_path, repo, remote, s3_bucket, lines, user_data="#!/bin/bash\nsleep 3\n")
    # Ctrl-C once the watch has begun (not after a fixed delay: a loaded machine may still be planning).
    watching = threading.Thread(
        target=interrupt_when, args=(lambda: any("watching" in line for line in lines),), daemon=True
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        watching.start()
        with pytest.raises(KeyboardInterrupt):
            session.run()
    finally:
        watching.join(timeout=60)
        signal.signal(signal.SIGINT, previous)
    run_id = session.record.run_id
    assert f"destroyed: nothing of run {run_id} is left running" in lines, lines
    assert TerraformRunner(workspace_dir(tmp_path / "state", run_id)).state_list() == []


def test_keep_leaves_the_infrastructure_and_down_removes_it(s3_bucket, pushed_repo, tmp_path: Path):
    from dataclasses import replace

    from campaign.targets.aws.commands import down

    repo, remote = pushed_repo
    lines: list[str] = []
    session = make_session(tmp_path, repo, remote, s3_bucket, lines)
    session.settings = replace(session.settings, keep=True)
    assert session.run().state == "succeeded"
    wait_for_power_off(tmp_path)
    run_id = session.record.run_id
    workdir = workspace_dir(tmp_path / "state", run_id)
    assert TerraformRunner(workdir).state_list() == ["terraform_data.instance"]
    assert f"--keep: the run's instance and role stay (and bill). Remove them: campaign down {run_id}" in lines
    down(run_id, root=repo, state_dir=tmp_path / "state", out=lines.append)
    assert TerraformRunner(workdir).state_list() == []
    assert lines[-1] == f"destroyed: no instance of run {run_id} is left (the results bucket is kept)"
