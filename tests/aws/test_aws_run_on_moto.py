"""`campaign run --target aws` end to end on moto: preflight, terraform init/plan/apply of the real
terraform/ with the real hashicorp/aws provider, the instance's userdata, the watcher, the results
collected and verified, terraform destroy, and nothing tagged with the run left in moto.

Named fakes, for what cannot run here: EC2 booting the instance (InstancePlayer runs the userdata that
moto holds with bash on this machine, and terminates the instance when it powers off) and the AL2023
system setup (the userdata is the local rehearsal: system setup off, campaign already installed, a
stand-in shutdown command; tests/aws/test_aws_userdata_sandbox.py executes the instance's whole script).
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.targets.aws import target
from tests.aws.instance_player import InstancePlayer, rehearsal_params


class Campaign:
    """The `campaign` command, in this process (so the test's moto wiring applies), from the repository."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str]:
        code = main(list(args))
        captured = self.capsys.readouterr()
        return code, captured.out + captured.err


def run_id_of(output: str) -> str:
    match = re.search(r"^run: (\S+)$", output, flags=re.MULTILINE)
    assert match, output
    return match.group(1)


@pytest.fixture
def aws_repo(pushed_repo, tf_moto, tmp_path: Path, monkeypatch, capsys):
    """The toy repository, configured for the AWS target on moto, with an instance player running."""
    repo, _ = pushed_repo
    bucket = f"campaign-e2e-{uuid.uuid4().hex[:10]}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[aws]\nbucket = "{bucket}"\nprefix = "campaigns"\ninstance_type = "t3.micro"\n'
        "poll_interval_s = 0.2\nmax_hours = 0.1\n"
    )
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(config))
    monkeypatch.chdir(repo)
    tf_moto.override_workspaces(monkeypatch)
    original = target.userdata_params
    monkeypatch.setattr(
        target, "userdata_params", lambda *args: rehearsal_params(original(*args), tmp_path / "instances")
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with InstancePlayer(tf_moto, tmp_path / "instances") as player:
        yield {"repo": repo, "bucket": bucket, "harness": tf_moto, "player": player, "campaign": Campaign(capsys)}
    signal.signal(signal.SIGINT, previous)


SECRET = "ghp_NeverLeaveThisMachine0123456789"


def test_a_whole_run_creates_runs_collects_verifies_and_destroys(aws_repo):
    """The default run: no bucket yet, so Terraform creates it, and it is kept. (Without its TLS-only policy
    and lifecycle rules, which moto cannot serve, see tf_moto.WITHOUT_BUCKET_EXTRAS; test_aws_module_on_moto.py
    applies them.) The origin URL carries a
    credential: the instance clones the same URL without it, and the credential appears nowhere."""
    from tests.core.conftest import git

    campaign, harness, repo = aws_repo["campaign"], aws_repo["harness"], aws_repo["repo"]
    remote = git(repo, "remote", "get-url", "origin").strip()
    git(repo, "remote", "set-url", "origin", f"file://oauth2:{SECRET}@{remote}")
    code, output = campaign("run", "sf0.01", "--target", "aws")
    run_id = run_id_of(output)
    assert code == 0, output
    assert f"the instance clones file://{remote}" in output
    assert_no_secret_anywhere(aws_repo, run_id, output)
    assert re.search(r"terraform plan: 1[0-9] to add, 0 to change, 0 to destroy", output), output
    assert f"run {run_id}: succeeded" in output
    assert f"destroyed: nothing of run {run_id} is left running" in output
    assert harness.tagged(run_id) == []
    assert len(aws_repo["player"].played) == 1

    store = f"s3://{aws_repo['bucket']}/campaigns"
    collected = aws_repo["repo"] / ".campaign" / "runs" / run_id / "outputs" / "results" / "sf0.01" / "toy.jsonl"
    assert [json.loads(line)["query"] for line in collected.read_text().splitlines()] == ["q1", "q2", "q3"]
    code, verified = campaign("verify", run_id, "--store", store)
    assert code == 0, verified
    s3 = harness.client("s3")
    log = s3.get_object(Bucket=aws_repo["bucket"], Key=f"campaigns/runs/{run_id}/logs/bootstrap.log")
    assert "the agent exited with 0" in log["Body"].read().decode()
    assert s3.get_bucket_versioning(Bucket=aws_repo["bucket"])["Status"] == "Enabled"  # created, and kept


def assert_no_secret_anywhere(aws_repo, run_id: str, output: str) -> None:
    """Not on the terminal, not in the run's Terraform workspace (userdata, tfvars, state, log), not in
    the store (run.json, journal, logs), not in the userdata EC2 holds."""
    assert SECRET not in output
    workspace = aws_repo["repo"] / ".campaign" / "aws" / run_id
    files = [path for path in workspace.rglob("*") if path.is_file() and ".terraform" not in path.parts]
    assert any(path.name == "userdata.sh" for path in files) and any(p.name == "terraform.tfstate" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    s3 = aws_repo["harness"].client("s3")
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=aws_repo["bucket"], Prefix=f"campaigns/runs/{run_id}/")["Contents"]
    ]
    assert {f"campaigns/runs/{run_id}/run.json", f"campaigns/runs/{run_id}/logs/bootstrap.log"} <= set(keys)
    for key in keys:
        assert SECRET.encode() not in s3.get_object(Bucket=aws_repo["bucket"], Key=key)["Body"].read(), key
    for script in aws_repo["player"].root.glob("*.userdata.sh"):  # as moto returned it to the "instance"
        assert SECRET not in script.read_text()


def interrupt_during_apply(monkeypatch) -> None:
    """Ctrl-C arrives while `terraform apply` runs: Terraform finishes (its state is saved), then campaign
    sees the interrupt."""
    from python_terraform import Terraform

    original = Terraform.cmd

    def cmd(self, command, *args, **options):
        if command == "apply":
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, command, *args, **options)

    monkeypatch.setattr(Terraform, "cmd", cmd)


def existing_bucket(aws_repo) -> None:
    aws_repo["harness"].client("s3").create_bucket(Bucket=aws_repo["bucket"])


def test_ctrl_c_during_apply_still_destroys(aws_repo, monkeypatch):
    existing_bucket(aws_repo)
    interrupt_during_apply(monkeypatch)
    code, output = aws_repo["campaign"]("run", "sf0.01", "--target", "aws")
    run_id = run_id_of(output)
    assert code == 130, output
    assert f"destroyed: nothing of run {run_id} is left running" in output
    assert aws_repo["harness"].tagged(run_id) == []


def test_without_the_teardown_an_interrupt_leaves_resources_and_down_removes_them(aws_repo, monkeypatch):
    """The previous test can fail: with RunSession.teardown removed, the same Ctrl-C leaves the run's
    resources in moto. `campaign down RUN` then removes them."""
    from campaign.targets.aws.session import RunSession

    existing_bucket(aws_repo)
    interrupt_during_apply(monkeypatch)
    monkeypatch.setattr(RunSession, "teardown", lambda self: None)
    code, output = aws_repo["campaign"]("run", "sf0.01", "--target", "aws")
    run_id = run_id_of(output)
    assert code == 130, output
    left = aws_repo["harness"].tagged(run_id)
    assert sorted(entry.split(" ")[0] for entry in left) == ["instance", "instance", "role", "security"], left
    code, output = aws_repo["campaign"]("down", run_id)
    assert code == 0, output
    assert aws_repo["harness"].tagged(run_id) == []


def test_keep_leaves_the_run_and_down_cleans_it_up(aws_repo):
    existing_bucket(aws_repo)
    campaign, harness = aws_repo["campaign"], aws_repo["harness"]
    code, output = campaign("run", "sf0.01", "--target", "aws", "--keep")
    run_id = run_id_of(output)
    assert code == 0, output
    assert f"campaign down {run_id}" in output
    assert list(aws_repo["player"].wait_until_powered_off().values()) == [0]
    left = harness.tagged(run_id)  # the instance powered itself off (terminated); its group and role stay
    assert sorted(entry.split(" ")[0] for entry in left) == ["instance", "role", "security"], left
    code, output = campaign("down", run_id)
    assert code == 0, output
    assert f"destroyed: no instance of run {run_id} is left" in output
    assert harness.tagged(run_id) == []
