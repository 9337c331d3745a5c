"""The AWS target's STS, S3 and EC2 calls against moto's server on 127.0.0.1; git checks on a real remote."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from campaign.errors import PreflightRefused
from campaign.targets.aws import checks, ec2
from campaign.targets.aws.auth import Auth
from campaign.targets.aws.settings import AwsSettings, load_settings
from campaign.targets.aws.watch import LOST, JournalWatcher, LineDisplay
from tests.core.conftest import git

REGION = "us-east-1"


def test_environment_credentials_are_named_and_checked_with_sts(s3_server):
    auth = Auth(AwsSettings())
    assert auth.mode == "environment"
    assert auth.describe().startswith("environment: AWS_ACCESS_KEY_ID test…")
    identity = auth.identity()
    assert identity.account.isdigit() and len(identity.account) == 12
    assert identity.arn.startswith("arn:aws:")


def test_a_wrapper_provides_the_credentials_and_they_are_used(s3_server, tmp_path: Path, monkeypatch):
    """A real wrapper in the aws-vault style: it exports credentials and runs the command it is given."""
    wrapper = tmp_path / "vault-exec"
    wrapper.write_text(
        "#!/bin/bash\nexport AWS_ACCESS_KEY_ID=AKIAWRAPPED AWS_SECRET_ACCESS_KEY=wrapped-secret\n"
        "export AWS_SESSION_TOKEN=wrapped-token AWS_CREDENTIAL_EXPIRATION=2999-01-01T00:00:00Z\n"
        'exec "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    auth = Auth(AwsSettings(auth_command=(str(wrapper), "--")))
    assert auth.mode == "wrapper"
    identity = auth.identity()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAWRAPPED"  # Terraform, a child, inherits them
    assert os.environ["AWS_SESSION_TOKEN"] == "wrapped-token"
    assert identity.account


def test_a_failing_wrapper_is_a_refusal_that_says_what_to_do(tmp_path: Path):
    auth = Auth(AwsSettings(auth_command=("false",)))
    with pytest.raises(PreflightRefused, match=r"the auth wrapper `false` exited 1: .*Run it by hand to log in"):
        auth.identity()


def test_a_missing_profile_is_explained(s3_server, monkeypatch):
    auth = Auth(AwsSettings(profile="no-such-profile"))
    verdict, identity = checks.credentials_verdict(auth)
    assert identity is None and not verdict.ok
    assert "no-such-profile" in verdict.summary and "aws configure list-profiles" in verdict.summary


def test_doctor_says_which_credentials_and_whether_they_work(s3_server, pushed_repo):
    repo, remote = pushed_repo
    result = subprocess.run(
        [sys.executable, "-m", "campaign.cli", "doctor"], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "auth: environment: AWS_ACCESS_KEY_ID test…" in result.stdout
    assert "ok   environment" in result.stdout and "(account " in result.stdout
    assert f"the instance clones: {remote}" in result.stdout


def test_the_bucket_probe_and_a_missing_bucket(s3_bucket):
    ok = checks.bucket_verdict(f"s3://{s3_bucket}/campaigns", REGION)
    assert ok.exists and ok.verdict.ok and "probe object written, read back and deleted" in ok.verdict.summary
    missing = checks.bucket_verdict("s3://campaign-no-such-bucket-here/x", REGION)
    assert not missing.exists and missing.verdict.ok and "Terraform creates it" in missing.verdict.summary


def test_the_commit_must_be_on_a_remote_tracking_branch(pushed_repo):
    repo, remote = pushed_repo
    head = git(repo, "rev-parse", "HEAD").strip()
    assert checks.pushed_verdict(repo, head, str(remote)).ok
    (repo / "more.txt").write_text("x\n")
    git(repo, "add", "more.txt")
    git(repo, "commit", "-q", "-m", "not pushed")
    head = git(repo, "rev-parse", "HEAD").strip()
    verdict = checks.pushed_verdict(repo, head, str(remote))
    assert not verdict.ok
    assert (
        verdict.summary
        == f"{head[:12]} is on no remote-tracking branch, so the instance could not clone it from {remote}"
    )
    assert verdict.details[0].startswith("fix: git push origin main")
    git(repo, "push", "-q", "origin", "main")
    assert checks.pushed_verdict(repo, head, str(remote)).ok


def test_the_clone_url_comes_from_origin_and_ssh_becomes_https(pushed_repo):
    repo, remote = pushed_repo
    assert checks.remote_url(repo, None) == str(remote)
    assert checks.remote_url(repo, "https://example.com/x.git") == "https://example.com/x.git"
    git(repo, "remote", "set-url", "origin", "git@github.com:me/bench.git")
    assert checks.remote_url(repo, None) == "https://github.com/me/bench.git"


def test_run_refuses_allow_dirty_and_an_unpushed_commit_before_anything_is_created(s3_server, pushed_repo):
    repo, _ = pushed_repo
    dirty = subprocess.run(
        [sys.executable, "-m", "campaign.cli", "run", "--target", "aws", "--allow-dirty"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dirty.returncode == 3
    assert "--allow-dirty is refused for the AWS target: the instance clones the commit" in dirty.stderr
    git(repo, "commit", "-q", "--allow-empty", "-m", "local only")
    refused = subprocess.run(
        [sys.executable, "-m", "campaign.cli", "run", "--target", "aws"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "preflight refused the run; nothing was started" in refused.stderr
    assert "commit pushed: " in refused.stderr and "fix: git push origin main" in refused.stderr
    assert not (repo / ".campaign" / "aws").exists()  # no Terraform workspace: nothing was provisioned


def test_config_file_settings_and_flag_overrides(tmp_path: Path):
    (tmp_path / ".campaign").mkdir()
    (tmp_path / ".campaign" / "config.toml").write_text(
        '[aws]\nregion = "eu-west-1"\ninstance_type = "m7i.large"\nauth_command = "aws-vault exec bench --"\n'
        "max_hours = 2.5\n"
    )
    settings = load_settings(tmp_path, region="us-west-2")
    assert settings.region == "us-west-2" and settings.instance_type == "m7i.large"
    assert settings.auth_command == ("aws-vault", "exec", "bench", "--")
    assert settings.watchdog_minutes == 150
    (tmp_path / ".campaign" / "config.toml").write_text('[aws]\nregoin = "eu-west-1"\n')
    with pytest.raises(Exception, match="Known keys of \\[aws\\]: region"):
        load_settings(tmp_path)


def run_instance(client, run_id: str) -> str:
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reservation = client.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": ec2.RUN_TAG, "Value": run_id}]}],
    )
    return reservation["Instances"][0]["InstanceId"]


def test_ec2_instance_states_and_leftovers(s3_server):
    client = ec2.ec2_client(REGION)
    instance = run_instance(client, "run-ec2-a")
    assert ec2.any_alive(client, [instance])
    assert ec2.leftover_instances(client, "run-ec2-a") == [instance]
    client.terminate_instances(InstanceIds=[instance])
    assert not ec2.any_alive(client, [instance])
    assert ec2.leftover_instances(client, "run-ec2-a") == []
    assert ec2.instance_states(client, ["i-0123456789abcdef0"]) == {"i-0123456789abcdef0": "terminated"}


def test_the_watcher_reports_an_instance_gone_without_a_final_entry(s3_store):
    """The instance is terminated (a spot reclaim, the watchdog) while the journal says running."""
    client = ec2.ec2_client(REGION)
    instance = run_instance(client, "run-lost")
    s3_store.put_bytes(
        b'{"seq": 0, "ts": "2026-01-01T00:00:00.000+00:00", "kind": "run", "state": "started", '
        b'"stage_runs": ["gen[sf1]"]}\n',
        "runs/run-lost/journal.jsonl",
    )
    client.terminate_instances(InstanceIds=[instance])
    lines: list[str] = []
    watcher = JournalWatcher(s3_store, "run-lost", instances_alive=lambda: ec2.any_alive(client, [instance]))
    result = watcher.watch(deadline_s=30, interval_s=0.1, display=LineDisplay(lines.append))
    assert result.state == LOST
    assert result.reason == "every instance of the run is gone, but its journal has no final entry"
    assert lines and lines[0].startswith("running · stage 0/1 · -")


def test_the_watcher_gives_up_at_the_deadline(s3_store):
    lines: list[str] = []
    result = JournalWatcher(s3_store, "run-never").watch(
        deadline_s=0.3, interval_s=0.1, display=LineDisplay(lines.append)
    )
    assert result.state == "deadline" and result.reason == "no final journal entry within 0m00s"
    assert lines == ["waiting for the instance to start the agent · 0m00s"]


def test_plan_shows_terraforms_own_plan_for_the_run(s3_bucket, pushed_repo):
    """Terraform plans the stand-in module (named fake: EC2 and the aws provider cannot run here) in a
    throwaway workspace; nothing is applied and no workspace is left behind."""
    from campaign.targets.aws.target import (
        AwsOptions,
        preflight,
        terraform_plan_verdict,
    )
    from tests.aws.test_aws_session import STAND_IN

    repo, _ = pushed_repo
    options = AwsOptions(
        campaign_file=repo / "campaign.yaml",
        selection="sf0.01",
        store_overrides=(("bucket", s3_bucket), ("prefix", "c")),
    )
    checked = preflight(options)
    assert not checked.plan.refusals, [v.summary for v in checked.plan.refusals]
    verdict = terraform_plan_verdict(checked, module_dir=STAND_IN)
    assert verdict.ok, verdict.summary
    assert verdict.summary == "1 to add, 0 to change, 0 to destroy (what `campaign run --target aws` will create)"
    assert not (repo / ".campaign" / "aws").exists()
