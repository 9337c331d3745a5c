"""`campaign resume RUN --target aws` on moto: a run whose instance died mid-way is resumed on a replacement
instance, and the stages that had finished are not run again.

Named fakes, as in test_aws_run_on_moto.py: EC2 booting (InstancePlayer runs the userdata moto holds with bash on
this machine, and kills it when the instance is terminated: the instance "dies" here by being terminated in moto)
and the AL2023 system setup (the userdata is the local rehearsal). The played agents run on this machine, so the
replacement's agent sees the dead agent's lease as held by a process gone from this host and takes it at once; on
AWS it takes it over (--take-over, in the replacement's userdata) once the dead agent's heartbeat is 120 s old.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from campaign.targets.aws import target
from tests.aws.instance_player import InstancePlayer, rehearsal_params
from tests.aws.test_aws_run_on_moto import Campaign, run_id_of
from tests.core.conftest import git, make_repo

CAMPAIGN = """\
name: relay
scale_factors: [1]
stages:
  - name: first
    kind: data
    run: bash scripts/first.sh {{ output_dir }}/first
    produces: [first]
  - name: second
    kind: bench
    needs: [first]
    run: bash scripts/second.sh
"""
FIRST = 'echo ran >> "{counts}/first.count"\nmkdir -p "$1"\necho made > "$1/table.txt"\n'
SECOND = (
    'echo started >> "{counts}/second.count"\n'
    'until [ -f "{counts}/gate" ]; do sleep 0.2; done\necho "second passed the gate"\n'
)


@pytest.fixture
def relay(tmp_path: Path, tf_moto, monkeypatch, capsys):
    counts = tmp_path / "counts"
    counts.mkdir()
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo = make_repo(
        tmp_path / "repo",
        {
            "campaign.yaml": CAMPAIGN,
            "scripts/first.sh": FIRST.format(counts=counts),
            "scripts/second.sh": SECOND.format(counts=counts),
        },
    )
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    bucket = f"campaign-resume-{uuid.uuid4().hex[:10]}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[aws]\nbucket = "{bucket}"\nprefix = "campaigns"\ninstance_type = "t3.micro"\npoll_interval_s = 0.2\n'
        "max_hours = 0.1\n"
    )
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(config))
    monkeypatch.chdir(repo)
    tf_moto.override_workspaces(monkeypatch)
    tf_moto.client("s3").create_bucket(Bucket=bucket)
    original = target.userdata_params
    monkeypatch.setattr(
        target, "userdata_params", lambda *args: rehearsal_params(original(*args), tmp_path / "instances")
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with InstancePlayer(tf_moto, tmp_path / "instances") as player:
        yield {
            "counts": counts,
            "store": f"s3://{bucket}/campaigns",
            "player": player,
            "harness": tf_moto,
            "campaign": Campaign(capsys),
        }
    signal.signal(signal.SIGINT, previous)


def kill_when_second_waits(counts: Path, player: InstancePlayer, ec2, killed: dict, timeout_s: float = 240) -> None:
    """Once `first` is done, `second` waits at its gate and `terraform apply` has recorded the instance (campaign
    is watching it), the instance running the run dies (terminated)."""
    deadline = time.monotonic() + timeout_s
    states = Path.cwd() / ".campaign" / "aws"
    while time.monotonic() < deadline and not (
        (counts / "second.count").exists()
        and any(i in p.read_text() for i in player.processes for p in states.glob("*/terraform.tfstate"))
    ):
        time.sleep(0.2)
    killed["instances"] = list(player.processes)
    ec2.terminate_instances(InstanceIds=killed["instances"])


def test_a_run_whose_instance_died_is_resumed_on_a_replacement_without_redoing_finished_stages(relay):
    campaign, counts, harness = relay["campaign"], relay["counts"], relay["harness"]
    killed: dict[str, list[str]] = {}
    killer = threading.Thread(
        target=kill_when_second_waits, args=(counts, relay["player"], harness.client("ec2"), killed), daemon=True
    )
    killer.start()
    code, output = campaign("run", "--target", "aws")  # `campaign run` in the main thread: it handles signals
    killer.join(timeout=30)
    assert len(killed["instances"]) == 1 and (counts / "second.count").exists(), output
    played = killed["instances"][0]
    run_id = run_id_of(output)
    assert code == 4 and f"run {run_id}: lost" in output, output
    assert harness.tagged(run_id) == []  # the first attempt's teardown destroyed what was left

    shutil.rmtree(relay["player"].root / run_id)  # the dead instance's disk went with it (its played work folder)
    (counts / "gate").write_text("open\n")
    code, output = campaign("resume", run_id, "--target", "aws", "--store", relay["store"])
    assert code == 0, output
    assert f"resuming run {run_id} on a replacement instance: 1 stage runs kept, 1 to run" in output
    assert f"run {run_id}: succeeded" in output
    assert (counts / "first.count").read_text().splitlines() == ["ran"]  # not run again
    assert (counts / "second.count").read_text().splitlines() == ["started", "started"]  # the unfinished one was
    assert len(relay["player"].processes) == 2  # the first instance and its replacement
    replacement = next(i for i in relay["player"].processes if i != played)
    assert "--take-over" in (relay["player"].root / f"{replacement}.userdata.sh").read_text()
    assert harness.tagged(run_id) == []
