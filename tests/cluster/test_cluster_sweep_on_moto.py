"""A sweep of clusters on moto: `campaign run --target aws --instance-types t3.micro,t3.small --nodes 2` brings up
a 2-node cluster of each type (terraform/cluster with the real terraform CLI and hashicorp/aws provider on moto's
server, tests/aws/tf_moto.py), runs the campaign on it (the agent on the coordinator) and brings it down, one type
after another. One sweep for the module (2 applies, 2 destroys): terraform on moto is slow.

Named fakes, as in test_cluster_aws_run.py: `PlayedSsm` (tests/cluster/ssm_player.py) plays every SSM command with
bash on this machine in the node's folder (moto's SSM executes nothing); campaign is on the played PATH
(install_spec = ""); `shutdown` on the nodes is a stand-in. A thread samples moto's instances tagged
campaign:cluster all along, so "never two clusters alive" is observed, not inferred.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest

from tests.aws.conftest import tf_moto_session  # noqa: F401 (the session's Terraform-on-moto harness)
from tests.cluster.ssm_player import PlayedSsm
from tests.cluster.test_cluster_aws_run import CAMPAIGN, SERVE, Campaign
from tests.core.conftest import git, make_repo

TYPES = ("t3.micro", "t3.small")
CLUSTER_TAG = "campaign:cluster"
ALIVE = ("pending", "running", "stopping", "stopped", "shutting-down")
BUCKET = f"campaign-csweep-{uuid.uuid4().hex[:10]}"


class ClusterSampler:
    """Every 0.3 s: each cluster with an instance not terminated, and its instances' types."""

    def __init__(self, ec2) -> None:
        self.ec2 = ec2
        self.samples: list[dict[str, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            found = self.ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": [CLUSTER_TAG]}])
            alive: dict[str, list[str]] = {}
            for reservation in found["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    # Only the sweep's clusters (sw<sweep>-<type>): the session's moto also holds other tests' ones.
                    if instance["State"]["Name"] in ALIVE and tags[CLUSTER_TAG].startswith("sw"):
                        alive.setdefault(tags[CLUSTER_TAG], []).append(instance["InstanceType"])
            self.samples.append(alive)

    def __enter__(self) -> ClusterSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def swept(tf_moto_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:  # noqa: F811
    """The toy clustered campaign pushed to a bare remote, configured for moto; one sweep of 2 types × 2 nodes."""
    root = tmp_path_factory.mktemp("cluster-sweep")
    remote = root / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = make_repo(root / "repo", {"campaign.yaml": CAMPAIGN, "scripts/serve.sh": SERVE})
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    config = root / "config.toml"
    config.write_text(
        f'[aws]\nbucket = "{BUCKET}"\nprefix = "campaigns"\ninstance_type = "t3.nano"\n'
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
            with ClusterSampler(harness.client("ec2")) as sampler:
                code, output = run(
                    "run", "--target", "aws", "--instance-types", ",".join(TYPES), "--nodes", "2",
                    "--state-dir", str(run.state),
                )  # fmt: skip
            [path] = (run.state / "sweeps").glob("*/sweep.json")
            record = json.loads(path.read_text())
            yield {
                "code": code,
                "output": output,
                "record": record,
                "status": run("status", record["sweep_id"], "--store", f"s3://{BUCKET}/campaigns"),
                "compared": run("compare", "--sweep", record["sweep_id"], "--store", f"s3://{BUCKET}/campaigns"),
                "samples": sampler.samples,
                "run": run,
                "ec2": harness.client("ec2"),
            }


def test_both_members_succeed_each_on_its_own_cluster(swept):
    assert swept["code"] == 0, swept["output"]
    record = swept["record"]
    assert record["state"] == "succeeded" and record["target"] == "cluster-aws-sweep", record
    members = record["members"]
    assert [(m["instance_type"], m["nodes"], m["state"]) for m in members] == [(t, 2, "succeeded") for t in TYPES], (
        members
    )
    short = record["sweep_id"].rsplit("-", 1)[-1]
    assert [m["cluster"] for m in members] == [f"sw{short}-t3-micro", f"sw{short}-t3-small"]
    for member in members:
        assert f"cluster {member['cluster']}: 2 nodes on AWS" in swept["output"]
        assert f"run {member['run_id']}: succeeded" in swept["output"]
        stored = (
            swept["run"]
            .harness.client("s3")
            .get_object(
                Bucket=BUCKET,
                Key=f"campaigns/clusters/{member['cluster']}/runs/{member['run_id']}/outputs/results/where.txt",
            )
        )
        assert stored["Body"].read().decode().startswith("on "), member  # ran on the coordinator of its cluster
        assert f"cluster {member['cluster']}: down; no instance tagged" in swept["output"]


def test_the_clusters_live_one_after_another_with_the_members_type_and_count(swept):
    samples, members = swept["samples"], swept["record"]["members"]
    names = [m["cluster"] for m in members]
    assert set().union(*samples) == set(names), samples  # every member's cluster was observed alive …
    assert max(len(alive) for alive in samples) == 1, samples  # … never two at once
    first = [next(i for i, s in enumerate(samples) if name in s) for name in names]
    last = [max(i for i, s in enumerate(samples) if name in s) for name in names]
    for before, after in itertools.pairwise(range(len(names))):
        assert last[before] < first[after]
    for member in members:
        seen = [s[member["cluster"]] for s in samples if member["cluster"] in s]
        assert max(len(types) for types in seen) == 2, seen  # its 2 nodes …
        assert {t for types in seen for t in types} == {member["instance_type"]}  # … of its type


def test_nothing_tagged_with_a_members_cluster_is_left(swept):
    ec2, state = swept["ec2"], swept["run"].state
    for member in swept["record"]["members"]:
        name = member["cluster"]
        found = ec2.describe_instances(Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [name]}])
        alive = [i for r in found["Reservations"] for i in r["Instances"] if i["State"]["Name"] in ALIVE]
        assert alive == [], alive
        groups = ec2.describe_security_groups(Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [name]}])
        assert groups["SecurityGroups"] == []
        assert not (state / "clusters" / name).exists()
    assert list((state / "sweep-clusters").iterdir()) == []


def test_compare_reads_each_members_run_from_its_clusters_prefix(swept):
    """The toy campaign measures nothing: compare finds the first member's run where its cluster stored it and
    says it has no results (a wrong prefix would not find the run at all)."""
    code, output = swept["compared"]
    first = swept["record"]["members"][0]
    assert code == 2, output
    assert f"run {first['run_id']} has no results" in output, output
    assert f"campaigns/clusters/{first['cluster']}/runs/{first['run_id']}/outputs holds no .jsonl" in output, output


def test_status_names_each_members_cluster(swept):
    code, text = swept["status"]
    assert code == 0, text
    for member in swept["record"]["members"]:
        assert member["run_id"] in text and f"cluster {member['cluster']}" in text, text
