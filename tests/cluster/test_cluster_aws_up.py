"""`campaign cluster up --target aws` and the commands on an AWS cluster, on moto with the real terraform CLI and
the real hashicorp/aws provider applying terraform/cluster (tests/aws/tf_moto.py).

Named fakes, for what cannot run here:
- SSM Run Command executing on the nodes: moto records each send-command and answers with canned output (status
  Success, nothing printed) without running anything. `PlayedSsm` (tests/cluster/ssm_player.py) sends every command
  to moto and then plays it with bash on this machine, in a folder per node, as the node would; the answers the
  tests read are the played ones. It also ends a node's processes when moto shows the node stopped or terminated.
- `shutdown` on the nodes is a stand-in that records its arguments (the watchdog).
- moto's placement groups never become available to the provider (its apply waits forever), so the campaign here
  declares none; the module's placement group is checked statically in test_cluster_aws.py.
The nodes' addresses are moto's private IPs, which nothing here can bind: the services' health checks are
commands. Terraform applies are slow here, so one cluster is brought up for the module and the tests below
follow its life in order: up interrupted then resumed, status, exec, deploy, stop/start, extend, down.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from campaign.cli.main import main
from campaign.targets.cluster.aws_nodes import find_nodes
from tests.aws.conftest import tf_moto_session  # noqa: F401 (the session's Terraform-on-moto harness)
from tests.cluster.ssm_player import PlayedSsm
from tests.core.conftest import git, make_repo

NAME = "pair"
CAMPAIGN = """\
name: pair
scale_factors: [1]
cluster:
  nodes: 2
  max_hours: 2
services:
  - name: store
    on: coordinator
    start: bash scripts/serve.sh store
    health:
      command: test -f "$CAMPAIGN_NODE_DIR/store.up"
    ready_timeout: 30s
  - name: worker
    on: workers
    start: bash scripts/serve.sh worker
    needs: [store]
    health:
      command: test "$(cat "$CAMPAIGN_NODE_DIR/worker.up")" = "$CAMPAIGN_COMMIT"
    ready_timeout: 30s
stages:
  - name: hello
    kind: bench
    run: echo hello
"""
SERVE = 'echo "$CAMPAIGN_COMMIT" > "$CAMPAIGN_NODE_DIR/$1.up"\nexec sleep 100000\n'


class Cluster:
    """`campaign cluster …` in this process (so the moto wiring applies), from the repository."""

    def __init__(self, repo: Path, state: Path, ssm: PlayedSsm, harness: Any):
        self.repo, self.state, self.ssm, self.harness = repo, state, ssm, harness

    def __call__(self, command: str, *args: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["cluster", command, "--state-dir", str(self.state), *args])
        return code, out.getvalue() + err.getvalue()

    def record(self) -> dict[str, Any]:
        return json.loads((self.state / "clusters" / NAME / "cluster.json").read_text())

    def status(self) -> tuple[int, dict[str, Any]]:
        code, output = self("status", "--json")
        return code, json.loads(output[: output.rindex("}") + 1])

    def node_dir(self, index: int) -> Path:
        return self.ssm.node_root(self.record()["nodes"][index - 1]["instance_id"])


@pytest.fixture(scope="module")
def cluster(tf_moto_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:  # noqa: F811
    """The repository pushed to a bare remote, configured for moto; `cluster up --target aws` interrupted right
    after terraform apply (a half-launched cluster), then left for the tests to resume."""
    root = tmp_path_factory.mktemp("cluster-aws")
    remote = root / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = make_repo(root / "repo", {"campaign.yaml": CAMPAIGN, "scripts/serve.sh": SERVE})
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    config = root / "config.toml"
    config.write_text(f'[aws]\nbucket = "campaign-{uuid.uuid4().hex[:10]}"\ninstance_type = "t3.micro"\n')
    with tf_moto_session.activated() as harness, pytest.MonkeyPatch.context() as patch:
        from campaign.targets.aws import ec2
        from campaign.targets.cluster_aws import services

        patch.chdir(repo)
        patch.setenv("CAMPAIGN_CONFIG", str(config))
        harness.override_workspaces(patch, bucket_extras=True)  # terraform/cluster has no bucket to leave them off
        with PlayedSsm(harness.client("ssm"), harness.client("ec2"), root / "nodes") as played:
            patch.setattr(ec2, "ssm_client", lambda region: played)
            run = Cluster(repo, root / "state", played, harness)
            original = services.start_services
            patch.setattr(services, "start_services", interrupted)
            code, output = run("up", "--target", "aws")
            assert code == 130, output
            patch.setattr(services, "start_services", original)
            yield run
            if (run.state / "clusters" / NAME).exists():
                run("down", "--name", NAME)


def interrupted(ssm: Any, record: Any) -> None:
    raise KeyboardInterrupt  # Ctrl-C once the nodes exist, before any service started


def test_a_half_launched_cluster_is_listed_found_by_its_tags_and_finished_by_up_resume(cluster: Cluster):
    record = cluster.record()
    assert record["target"] == "aws" and record["state"] == "provisioning"
    code, listed = cluster("list")
    assert code == 0 and f"{NAME}\taws\tprovisioning\t2 nodes" in listed
    tagged = find_nodes(cluster.harness.client("ec2"), NAME)
    assert [n.instance_id for n in tagged] == [n["instance_id"] for n in record["nodes"]]
    code, output = cluster("up", "--target", "aws")
    assert code == 2 and f"campaign cluster up --resume --name {NAME}" in output
    code, output = cluster("up", "--resume", "--name", NAME)
    assert code == 0, output
    assert "the 2 nodes launched before are all there: no terraform apply" in output  # the same nodes, finished
    assert f"cluster {NAME}: 2 nodes on AWS (us-east-1)" in output and "healthy" in output
    assert "store on node 1 (coordinator): no ports — healthy" in output
    assert "worker on node 2 (workers): no ports — healthy" in output
    assert cluster.record()["state"] == "up"


def test_status_shows_ec2_health_since_when_commit_and_watchdog(cluster: Cluster):
    code, document = cluster.status()
    assert code == 0, document
    assert document["target"] == "aws" and document["healthy"]
    assert {n["state"] for n in document["ec2"].values()} == {"running"}
    assert 1.9 * 3600 < document["watchdog_left_s"] <= 2 * 3600
    assert document["commit"] == git(cluster.repo, "rev-parse", "HEAD").strip()
    since = {s["service"]: s["healthy_since"] for s in document["services"]}
    assert all(since.values())
    assert {i["service"]: i["healthy_since"] for i in cluster.record()["instances"]} == since  # persisted
    watchdog = (cluster.node_dir(1) / "shutdown.calls").read_text().splitlines()
    assert 100 < int(watchdog[-1].split()[1][1:]) <= 120 and "max lifetime" in watchdog[-1]  # 2 h, less what passed
    sent = [c for c in cluster.harness.client("ssm").list_commands()["Commands"]]
    assert sent and {c["DocumentName"] for c in sent} == {"AWS-RunShellScript"}  # all of it through moto's SSM


def test_health_flips_are_remembered(cluster: Cluster):
    worker = cluster.node_dir(2) / "run" / "worker.pid"
    os.killpg(int(worker.read_text()), signal.SIGKILL)  # the service dies on its node
    code, document = cluster.status()
    assert code == 4
    broken = next(s for s in document["services"] if s["service"] == "worker")
    assert not broken["healthy"] and broken["detail"] == "not running (its process is gone)"
    assert next(i for i in cluster.record()["instances"] if i["service"] == "worker")["healthy_since"] is None


def test_exec_runs_on_every_node_through_ssm_with_output_per_node(cluster: Cluster):
    code, output = cluster("exec", "--", 'echo "index $CAMPAIGN_NODE_INDEX of $CAMPAIGN_CLUSTER_NODES"; pwd')
    assert code == 0, output
    assert "[1] index 1 of 2" in output and "[2] index 2 of 2" in output
    assert f"[2] {cluster.node_dir(2) / 'checkout'}" in output
    assert "2 succeeded, 0 failed" in output
    code, output = cluster("exec", "--on", "all", "--", 'test "$CAMPAIGN_NODE_ROLE" = coordinator')
    assert code == 4 and "== node 2 (" in output and "exit 1" in output and "1 succeeded, 1 failed" in output


def test_deploy_puts_the_new_commit_on_every_node_and_restarts_the_services(cluster: Cluster):
    (cluster.repo / "NOTES").write_text("a change\n")
    git(cluster.repo, "add", "NOTES")
    git(cluster.repo, "commit", "-q", "-m", "a change")
    git(cluster.repo, "push", "-q")
    head = git(cluster.repo, "rev-parse", "HEAD").strip()
    code, output = cluster("deploy")
    assert code == 0, output
    assert f"deploy {head[:12]} to cluster {NAME}: 2 succeeded, 0 failed" in output
    code, output = cluster("exec", "--", "git rev-parse HEAD")
    assert output.count(f"] {head}") == 2
    code, document = cluster.status()
    assert code == 0 and document["commit"] == head


def test_stop_keeps_the_nodes_and_start_brings_the_services_back_healthy(cluster: Cluster):
    code, output = cluster("stop")
    assert code == 0 and f"cluster {NAME}: 2 nodes stopped (volumes kept)" in output
    assert {n.state for n in find_nodes(cluster.harness.client("ec2"), NAME)} == {"stopped"}
    code, document = cluster.status()
    assert code == 4 and all("is not running (EC2)" in s["detail"] for s in document["services"])
    code, output = cluster("exec", "--", "true")
    assert code == 3 and f"cluster {NAME} is stopped (EC2): `campaign cluster start --name {NAME}` first" in output
    calls_before = len((cluster.node_dir(1) / "shutdown.calls").read_text().splitlines())
    code, output = cluster("start")
    assert code == 0, output
    assert "store on node 1 (coordinator): no ports — healthy" in output
    after = (cluster.node_dir(1) / "shutdown.calls").read_text().splitlines()
    assert len(after) > calls_before and after[-1].startswith("-h +")  # the watchdog set again after start


def test_extend_pushes_the_watchdog_on_every_node(cluster: Cluster):
    left = cluster.status()[1]["watchdog_left_s"]
    code, output = cluster("extend", "--hours", "2")
    assert code == 0, output
    assert cluster.status()[1]["watchdog_left_s"] > left + 7000
    for index in (1, 2):
        minutes = int((cluster.node_dir(index) / "shutdown.calls").read_text().splitlines()[-1].split()[1][1:])
        assert 230 < minutes <= 240


def test_down_destroys_everything_tagged_with_the_cluster(cluster: Cluster):
    code, output = cluster("down")
    assert code == 0, output
    assert f"cluster {NAME}: down; no instance tagged campaign:cluster={NAME} is left" in output
    ec2 = cluster.harness.client("ec2")
    assert find_nodes(ec2, NAME) == []
    groups = ec2.describe_security_groups(Filters=[{"Name": "tag:campaign:cluster", "Values": [NAME]}])
    assert groups["SecurityGroups"] == []
    code, output = cluster("list")
    assert "no clusters here" in output


def test_instances_tagged_with_a_cluster_this_machine_has_no_record_of_are_refused(cluster: Cluster):
    ec2 = cluster.harness.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"Key": "campaign:cluster", "Value": "ghost"}, {"Key": "campaign:index", "Value": "1"}]
    launched = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )["Instances"][0]["InstanceId"]
    try:
        code, output = cluster("up", "--target", "aws", "--name", "ghost")
        assert code == 3, output
        assert f"instances tagged campaign:cluster=ghost exist ({launched})" in output
        assert f"aws ec2 terminate-instances --instance-ids {launched}" in output
        assert not (cluster.state / "clusters" / "ghost").exists()
    finally:
        ec2.terminate_instances(InstanceIds=[launched])


def test_the_node_userdata_sets_the_watchdog_and_passes_shellcheck():
    from campaign.targets.cluster.state import ClusterRecord
    from campaign.targets.cluster_aws.provision import node_userdata

    record = ClusterRecord("x; rm -rf /", "aws", "/r", "c.yaml", "0" * 40, 0.0, 7200.0, "provisioning", [])
    script = node_userdata(record)
    assert "readonly CLUSTER='x; rm -rf /'" in script and "readonly WATCHDOG_MINUTES=120" in script
    assert 'shutdown -h "+${WATCHDOG_MINUTES}" "campaign cluster ${CLUSTER}: max lifetime reached"' in script
    shellcheck = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "shellcheck"
    checked = subprocess.run([str(shellcheck), "-s", "bash", "-"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
