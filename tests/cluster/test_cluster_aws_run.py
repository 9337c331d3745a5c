"""`campaign run … --cluster NAME` and `campaign resume RUN --cluster NAME` on an AWS cluster, on moto with the real
terraform CLI and the real hashicorp/aws provider applying terraform/cluster once for the module (tests/aws/tf_moto.py).

Named fakes, for what cannot run here:
- SSM Run Command executing on the nodes: moto records each send-command and answers with canned output without
  running anything. `PlayedSsm` (tests/cluster/ssm_player.py) sends every command to moto, then plays it with bash
  on this machine in the node's own folder; so the coordinator's agent is a real `campaign agent` process started
  by the played start script, writing to moto's S3.
- campaign installed on the node: the settings say `install_spec = ""` (campaign is on the node's PATH: the
  player's PATH has this virtualenv), as the AWS target's local rehearsal does; the pip install of the checkout
  into <node>/venvs/<commit> is what a real node runs (test_the_start_script_installs_campaign_once_per_commit).
- `shutdown` on the nodes is a stand-in that records its arguments (the watchdog).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from campaign.cli.main import main
from tests.aws.conftest import tf_moto_session  # noqa: F401 (the session's Terraform-on-moto harness)
from tests.cluster.ssm_player import PlayedSsm
from tests.core.conftest import git, make_repo

NAME = "duo"
BUCKET = f"campaign-run-{uuid.uuid4().hex[:10]}"
STORE = f"s3://{BUCKET}/campaigns/clusters/{NAME}"
CAMPAIGN = """\
name: duo
scale_factors: [1]
vars: {fail_once: "no", agent_dies: "no"}
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
stages:
  - name: probe
    kind: bench
    run: mkdir -p {{ output_dir }}/results && echo "on $CAMPAIGN_CLUSTER_COORDINATOR of $CAMPAIGN_CLUSTER_NODES in $CAMPAIGN_CLUSTER from $PWD" > {{ output_dir }}/results/where.txt
    produces: [results/where.txt]
  - name: crash
    kind: validate
    needs: [probe]
    run: test "{{ vars.agent_dies }}" = no || kill -9 "$(cat "$CAMPAIGN_NODE_DIR/run/agent-$CAMPAIGN_RUN_ID.pid")"
  - name: flaky
    kind: validate
    needs: [probe]
    run: test "{{ vars.fail_once }}" = no || test -f "$CAMPAIGN_NODE_DIR/failed-once" || { touch "$CAMPAIGN_NODE_DIR/failed-once"; exit 1; }
"""
FANNED = """\
name: fanned
scale_factors: [1]
cluster: {nodes: 2}
stages:
  - name: everywhere
    kind: validate
    on: all
    run: hostname
"""
SERVE = 'echo "$CAMPAIGN_COMMIT" > "$CAMPAIGN_NODE_DIR/$1.up"\nexec sleep 100000\n'


class Campaign:
    """`campaign …` in this process (so the moto wiring applies), from the repository."""

    def __init__(self, repo: Path, state: Path, ssm: PlayedSsm, harness: Any):
        self.repo, self.state, self.ssm, self.harness = repo, state, ssm, harness

    def __call__(self, *args: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue() + err.getvalue()

    def run(self, *args: str) -> tuple[int, str]:
        return self("run", "--cluster", NAME, "--state-dir", str(self.state), *args)

    def cluster(self, command: str, *args: str) -> tuple[int, str]:
        return self("cluster", command, "--state-dir", str(self.state), "--name", NAME, *args)

    def stored(self, run_id: str, relative: str) -> str:
        key = f"campaigns/clusters/{NAME}/runs/{run_id}/{relative}"
        return self.harness.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()

    def coordinator(self) -> tuple[str, Path]:
        code, output = self.cluster("exec", "--on", "1", "--", "echo $CAMPAIGN_NODE_ADDRESS")
        address = re.search(r"\[1\] (\S+)", output)
        assert code == 0 and address, output
        node = next(p for p in self.ssm.root.glob("i-*") if (p / "store.up").exists())
        return address.group(1), node


def run_id_of(output: str) -> str:
    match = re.search(r"^run: (\S+)$", output, flags=re.MULTILINE)
    assert match, output
    return match.group(1)


@pytest.fixture(scope="module")
def campaign(tf_moto_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:  # noqa: F811
    """The repository pushed to a bare remote, configured for moto (its bucket made), a 2-node cluster up."""
    root = tmp_path_factory.mktemp("cluster-aws-run")
    remote = root / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    files = {"campaign.yaml": CAMPAIGN, "fanned.yaml": FANNED, "scripts/serve.sh": SERVE}
    repo = make_repo(root / "repo", files)
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    config = root / "config.toml"
    config.write_text(
        f'[aws]\nbucket = "{BUCKET}"\nprefix = "campaigns"\ninstance_type = "t3.micro"\n'
        'install_spec = ""\npoll_interval_s = 0.3\n'
    )
    with tf_moto_session.activated() as harness, pytest.MonkeyPatch.context() as patch:
        from campaign.targets.aws import ec2

        patch.chdir(repo)
        patch.setenv("CAMPAIGN_CONFIG", str(config))
        harness.override_workspaces(patch, bucket_extras=True)
        harness.client("s3").create_bucket(Bucket=BUCKET)
        with PlayedSsm(harness.client("ssm"), harness.client("ec2"), root / "nodes") as played:
            patch.setattr(ec2, "ssm_client", lambda region: played)
            run = Campaign(repo, root / "state", played, harness)
            code, output = run("cluster", "up", "--target", "aws", "--state-dir", str(run.state))
            assert code == 0, output
            yield run
            run.cluster("down")


def test_a_run_on_the_cluster_runs_its_agent_on_the_coordinator_and_stores_in_the_clusters_prefix(campaign):
    code, output = campaign.run()
    assert code == 0, output
    run_id = run_id_of(output)
    assert f"store {STORE}; nothing is provisioned, nothing torn down" in output
    assert f"run {run_id}: succeeded" in output
    address, node = campaign.coordinator()
    where = campaign.stored(run_id, "outputs/results/where.txt")  # written on the coordinator, stored in moto's S3
    assert where == f"on {address} of 2 in {NAME} from {node / 'checkout'}\n"
    record = campaign.stored(run_id, "run.json")
    assert '"target": "cluster-aws"' in record and f'"store": "{STORE}"' in record
    local = campaign.state / "runs" / run_id / "outputs" / "results" / "where.txt"
    assert local.read_text() == where  # collected and verified against the manifest
    assert (node / "logs" / f"agent-{run_id}.log").exists()
    agent_commands = [
        c for c in campaign.ssm.sent if f"agent {run_id} --store {STORE}" in c["Parameters"]["commands"][0]
    ]
    assert [c["DocumentName"] for c in agent_commands] == ["AWS-RunShellScript"]
    code, status = campaign("status", run_id, "--store", STORE)
    assert code == 0 and "succeeded" in status


def test_every_key_of_a_cluster_run_is_one_the_nodes_role_may_write(campaign):
    """The role terraform/cluster applied (read back from moto's IAM): every object the coordinator's agent
    wrote for the runs is under the resource of its write statement, so the module needs nothing more."""
    iam, s3 = campaign.harness.client("iam"), campaign.harness.client("s3")
    role = next(
        r for r in iam.list_roles()["Roles"] if r.get("Description", "").startswith(f"campaign cluster {NAME}:")
    )
    name = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"][0]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    write = next(s for s in document["Statement"] if "s3:PutObject" in s["Action"])
    resources = [write["Resource"]] if isinstance(write["Resource"], str) else write["Resource"]
    assert resources == [f"arn:aws:s3:::{BUCKET}/campaigns/clusters/{NAME}/*"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="campaigns/")["Contents"]]
    assert any(k.endswith("/outputs/results/where.txt") for k in keys)
    assert all(fnmatch.fnmatchcase(f"arn:aws:s3:::{BUCKET}/{k}", resources[0]) for k in keys), keys


def test_a_run_of_another_commit_is_refused_naming_cluster_deploy(campaign):
    (campaign.repo / "NOTES").write_text("not deployed\n")
    git(campaign.repo, "add", "NOTES")
    git(campaign.repo, "commit", "-q", "-m", "not deployed")
    try:
        code, output = campaign.run()
    finally:
        git(campaign.repo, "reset", "-q", "--hard", "HEAD~1")
    assert code == 3, output
    assert f"cluster {NAME} runs commit" in output and f"`campaign cluster deploy --name {NAME}`" in output
    assert "run: " not in output


def test_on_all_stages_and_a_foreign_store_are_refused(campaign):
    code, output = campaign.run("-f", "fanned.yaml")
    assert code == 3 and "`on: all` stages (everywhere) are not run on AWS clusters" in output
    code, output = campaign.run("--store", f"s3://{BUCKET}/campaigns")
    assert code == 3 and f"is stored in {STORE}, the only prefix its nodes' role may write" in output


def test_a_failed_run_resumes_on_the_cluster(campaign):
    code, output = campaign.run("--var", "fail_once=yes")
    assert code == 4, output
    run_id = run_id_of(output)
    assert f"campaign resume {run_id} --cluster {NAME}" in output and f"agent-{run_id}.log" in output
    code, output = campaign("resume", run_id, "--cluster", NAME, "--state-dir", str(campaign.state))
    assert code == 0, output
    assert f"run {run_id}: succeeded" in output
    assert campaign.stored(run_id, "outputs/results/where.txt").startswith("on ")


def test_an_agent_that_dies_on_the_coordinator_is_seen_gone_not_waited_for(campaign):
    """The agent killed (kill -9, by its own stage) leaves no final journal entry: the watcher asks the coordinator
    through SSM whether the agent lives, and reports the run lost at once (not after the cluster's lifetime)."""
    code, output = campaign.run("--var", "agent_dies=yes")
    assert code == 4, output
    run_id = run_id_of(output)
    assert f"run {run_id}: lost (the agent on node 1 of cluster {NAME} is gone (or its node stopped)" in output
    assert f"agent-{run_id}.log" in output


def test_a_run_is_refused_when_a_node_is_stopped(campaign):
    ec2 = campaign.harness.client("ec2")
    node = campaign.harness.client("ec2").describe_instances(
        Filters=[{"Name": "tag:campaign:cluster", "Values": [NAME]}, {"Name": "tag:campaign:index", "Values": ["2"]}]
    )["Reservations"][0]["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[node])
    code, output = campaign.run()
    assert code == 3, output
    assert f"cluster {NAME}: not every node is running (node 2 (" in output and f"{node} is stopped" in output
    assert f"`campaign cluster start --name {NAME}` first" in output and "run: " not in output
    code, output = campaign.cluster("start")
    assert code == 0, output


def test_the_start_script_installs_campaign_once_per_commit():
    """What a real node runs before the agent (here install_spec is empty): a virtualenv per commit, python3.11
    from dnf when missing; the script passes shellcheck."""
    from campaign.targets.cluster.state import ClusterRecord, Node
    from campaign.targets.cluster_aws.agent import start_script

    node = Node(1, "10.0.0.11", "coordinator", "/srv/campaign", "i-0123456789abcdef0")
    record = ClusterRecord(NAME, "aws", "/r", "c.yaml", "a" * 40, 0.0, 1.0, "up", [node], region="eu-west-1")
    script = start_script(record, "RUN-1", STORE, install_spec=".[tpch]")
    assert f'venv="$root/venvs/"{"a" * 40}' in script and "dnf install -y -q python3.11" in script
    assert "pip\" install --quiet '.[tpch]'" in script and 'campaign="$venv/bin/campaign"' in script
    assert f'setsid nohup "$campaign" agent RUN-1 --store {STORE} --checkout "$checkout"' in script
    assert "export CAMPAIGN_CLUSTER_COORDINATOR=10.0.0.11" in script and "export AWS_DEFAULT_REGION=eu-west-1" in script
    shellcheck = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "shellcheck"
    checked = subprocess.run([str(shellcheck), "-s", "bash", "-"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
