"""The bootstrap part of the userdata, executed here: system setup off, a local git remote, the S3 store on
moto's server. What cannot run here — EC2 booting the AMI and cloud-init starting the script — is replaced
by starting the rendered script with bash; `shutdown` is a stand-in script that records its arguments."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

from campaign.preflight.planner import make_plan
from campaign.run.journal import read_entries
from campaign.run.keys import RunKeys
from campaign.run.record import new_run_id
from campaign.store import open_store
from campaign.targets.aws.session import collect_outputs, incremental_keys
from campaign.targets.aws.target import new_record
from campaign.targets.aws.userdata import UserdataParams, render_userdata
from campaign.targets.aws.watch import JournalWatcher, LineDisplay
from tests.core.conftest import git

VENV_BIN = Path(sys.executable).parent


def start_instance_stand_in(tmp_path: Path, *, repo, remote, store_url: str, selection: str):
    """Plan and record the run as `campaign run --target aws` does, then start its userdata with bash."""
    plan, root = make_plan(repo / "campaign.yaml", selection, allow_dirty=False, target="aws")
    run_id = new_run_id(plan.commit)
    record = new_record(plan, root, run_id, store_url, keep_going=False)
    store = open_store(store_url)
    store.put_bytes(record.to_bytes(), RunKeys(run_id).record)
    calls = tmp_path / "shutdown.calls"
    shutdown = tmp_path / "shutdown-stand-in"
    shutdown.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {calls}\n')
    shutdown.chmod(0o755)
    params = UserdataParams(
        run_id=run_id,
        campaign=record.campaign,
        commit=record.commit,
        repo_url=str(remote),
        store_url=store_url,
        region="us-east-1",
        watchdog_minutes=90,
        bench_user=getpass.getuser(),
        work_root=str(tmp_path / "instance"),
        install_spec="",
        campaign_command=(sys.executable, "-m", "campaign.cli"),
        system_setup=False,
        machine_control=True,
        shutdown_command=str(shutdown),
        run_json_wait_s=30,
    )
    script = tmp_path / "userdata.sh"
    script.write_text(render_userdata(params))
    assert "shutdown-stand-in" in script.read_text() and "\nshutdown " not in script.read_text()
    env = {**__import__("os").environ, "PATH": f"{VENV_BIN}:{__import__('os').environ['PATH']}"}
    process = subprocess.Popen(
        ["bash", str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return plan, record, store, process, calls


def test_the_bootstrap_runs_the_agent_and_the_watcher_sees_it_finish(s3_bucket, pushed_repo, tmp_path: Path):
    repo, remote = pushed_repo
    store_url = f"s3://{s3_bucket}/campaigns"
    plan, record, store, process, calls = start_instance_stand_in(
        tmp_path, repo=repo, remote=remote, store_url=store_url, selection="sf0.01,sf1"
    )
    lines: list[str] = []
    watcher = JournalWatcher(store, record.run_id, incremental=incremental_keys(plan, record))
    result = watcher.watch(deadline_s=180, interval_s=0.2, display=LineDisplay(lines.append))
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert result.state == "succeeded", output
    assert lines, "the watcher showed no progress"

    # The results are exactly where the watcher (and `campaign status`) read them.
    collected = tmp_path / "collected"
    count = collect_outputs(store, record.run_id, collected, verify=True)
    instance_results = tmp_path / "instance/state/runs" / record.run_id / "outputs/results/sf1/toy.jsonl"
    assert (collected / "results/sf1/toy.jsonl").read_bytes() == instance_results.read_bytes()
    assert [json.loads(line)["query"] for line in instance_results.read_text().splitlines()] == ["q1", "q2", "q3"]
    assert count == len(store.list_keys(RunKeys(record.run_id).outputs + "/")) >= 4
    journal = read_entries(store.get_bytes(RunKeys(record.run_id).journal))
    assert journal[-1]["kind"] == "run" and journal[-1]["state"] == "succeeded"
    bootstrap_log = store.get_bytes(RunKeys(record.run_id).bootstrap_log).decode()
    assert "the agent exited with 0" in bootstrap_log
    head = git(repo, "rev-parse", "HEAD").strip()
    assert git(tmp_path / "instance/checkout", "rev-parse", "HEAD").strip() == head

    # The watchdog was set first, the power-off came last.
    recorded = calls.read_text().splitlines()
    assert recorded[0] == f"-h +90 campaign watchdog: run {record.run_id} exceeded its 90 minutes"
    assert recorded[-1] == f"-h now campaign: run {record.run_id} ended"


def test_a_bootstrap_that_fails_records_it_and_the_watcher_reports_failure(s3_bucket, pushed_repo, tmp_path: Path):
    repo, _ = pushed_repo
    store_url = f"s3://{s3_bucket}/campaigns"
    _plan, record, store, process, calls = start_instance_stand_in(
        tmp_path, repo=repo, remote=tmp_path / "no-such-remote.git", store_url=store_url, selection="sf0.01"
    )
    result = JournalWatcher(store, record.run_id).watch(deadline_s=60, interval_s=0.2, display=LineDisplay(print))
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert result.state == "failed", output
    assert result.reason.startswith(f"userdata stopped at step 'clone {tmp_path / 'no-such-remote.git'} at ")
    assert f"see {store_url}/runs/{record.run_id}/logs/bootstrap.log" in result.reason
    bootstrap_log = store.get_bytes(RunKeys(record.run_id).bootstrap_log).decode()
    assert "does not appear to be a git repository" in bootstrap_log or "no-such-remote" in bootstrap_log
    assert calls.read_text().splitlines()[-1] == f"-h now campaign: run {record.run_id} ended"  # still powers off
