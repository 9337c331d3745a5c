"""The AWS side of clusters against moto's server: nodes found by the tags set at creation, EC2 stop/start, SSM
AWS-RunShellScript with bounded polling; and terraform/cluster checked as terraform/ is (fmt, checkov with a
reason for every skip, the intra-cluster rule the only ingress, tags at creation, the placement group).

moto does not run SSM commands: it returns canned invocations (status Success, empty output), so these tests
check what campaign sends and how it reads and bounds the answers, not a command's real output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import boto3
import hcl2
import pytest

from campaign.targets.cluster.aws_nodes import find_nodes, run_shell, start_nodes, stop_nodes
from tests.core.conftest import REPO_ROOT
from tests.hcl import unquote

MODULE = REPO_ROOT / "terraform" / "cluster"
CHECKOV = Path(os.environ.get("CAMPAIGN_CHECKOV") or REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov")


@pytest.fixture
def ec2(s3_server: str):
    return boto3.client("ec2", region_name="us-east-1")


@pytest.fixture
def ssm(s3_server: str):
    return boto3.client("ssm", region_name="us-east-1")


def launch(ec2, cluster: str, nodes: int) -> list[str]:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = []
    for index in range(1, nodes + 1):
        tags = [
            {"Key": "campaign:cluster", "Value": cluster},
            {"Key": "campaign:index", "Value": str(index)},
            {"Key": "campaign:role", "Value": "coordinator" if index == 1 else "workers"},
        ]
        answer = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        ids.append(answer["Instances"][0]["InstanceId"])
    return ids


def test_nodes_are_found_by_their_tags_coordinator_first(ec2):
    ids = launch(ec2, "alpha", 3)
    launch(ec2, "beta", 2)
    nodes = find_nodes(ec2, "alpha")
    assert [n.instance_id for n in nodes] == ids
    assert [(n.index, n.role) for n in nodes] == [(1, "coordinator"), (2, "workers"), (3, "workers")]
    assert all(n.private_ip for n in nodes)
    ec2.terminate_instances(InstanceIds=ids[2:])
    assert [n.index for n in find_nodes(ec2, "alpha")] == [1, 2]  # a half-gone cluster is what is left of it


def test_stop_keeps_the_nodes_and_start_brings_them_back(ec2):
    launch(ec2, "gamma", 2)
    nodes = find_nodes(ec2, "gamma")
    assert set(stop_nodes(ec2, nodes, poll_s=0.1).values()) == {"stopped"}
    assert {n.state for n in find_nodes(ec2, "gamma")} == {"stopped"}
    assert set(start_nodes(ec2, nodes, poll_s=0.1).values()) == {"running"}


def test_exec_sends_run_shell_script_to_every_node_and_reads_each_answer(ec2, ssm):
    ids = launch(ec2, "delta", 3)
    results = run_shell(ssm, ids, "uname -a", timeout_s=30, poll_s=0.1)
    assert [r.instance_id for r in results] == ids
    assert {(r.status, r.returncode) for r in results} == {("Success", 0)}  # moto's canned answer
    sent = ssm.list_commands()["Commands"]
    assert any(c["DocumentName"] == "AWS-RunShellScript" and c["Parameters"]["commands"] == ["uname -a"] for c in sent)


def test_polling_is_bounded_when_an_invocation_never_ends():
    class NeverEnds:
        class exceptions:  # boto3's shape: client.exceptions.InvocationDoesNotExist
            InvocationDoesNotExist = KeyError

        def send_command(self, **kwargs):
            return {"Command": {"CommandId": "c-1"}}

        def get_command_invocation(self, **kwargs):
            return {"Status": "InProgress"}

    waits: list[float] = []
    results = run_shell(NeverEnds(), ["i-1", "i-2"], "sleep 1000", timeout_s=0.3, poll_s=0.05, sleep=waits.append)
    assert [(r.status, r.returncode) for r in results] == [("NoAnswer", 124), ("NoAnswer", 124)]
    assert waits, "it polled"


def parse_module() -> dict:
    merged: dict = {}
    for path in sorted(MODULE.glob("*.tf")):
        with open(path, encoding="utf-8") as handle:
            for kind, entries in unquote(hcl2.load(handle)).items():
                for entry in entries if isinstance(entries, list) else [entries]:
                    if isinstance(entry, dict):
                        for name, body in entry.items():
                            merged.setdefault(kind, {}).setdefault(name, {}).update(
                                body if isinstance(body, dict) else {"": body}
                            )
    return merged


def test_terraform_cluster_fmt_is_clean():
    result = subprocess.run(["terraform", "fmt", "-check", "-diff", str(MODULE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_only_ingress_is_from_the_cluster_itself():
    resources = parse_module()["resource"]
    assert "ingress" not in resources["aws_security_group"]["cluster"]
    ingress = resources.get("aws_vpc_security_group_ingress_rule", {})
    assert list(ingress) == ["intra_cluster"]
    rule = ingress["intra_cluster"]
    assert rule["referenced_security_group_id"] == "${aws_security_group.cluster.id}"
    assert rule["security_group_id"] == "${aws_security_group.cluster.id}"
    assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule
    text = "".join(p.read_text() for p in MODULE.glob("*.tf"))
    assert "aws_security_group_rule" not in text and "key_name" not in text


def test_nodes_are_tagged_at_creation_and_placed_when_asked():
    node = parse_module()["resource"]["aws_instance"]["node"]
    assert node["count"] == "${var.nodes}"
    assert set(node["tags"]) >= {"campaign:role", "campaign:index", "campaign:cluster"}
    assert "aws_placement_group.cluster[0].id" in node["placement_group"]
    assert node["metadata_options"][0]["http_tokens"] == "required"
    assert node["root_block_device"][0]["encrypted"] is True
    group = parse_module()["resource"]["aws_placement_group"]["cluster"]
    assert group["strategy"] == "${var.placement_strategy}"


def test_checkov_passes_on_the_cluster_module_with_reasoned_skips_only():
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: `make {CHECKOV.relative_to(REPO_ROOT)}` installs it")
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(MODULE),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["failed"] == 0, json.dumps(report["results"].get("failed_checks"), indent=1)[:4000]
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+)(:?)(.*)", "".join(p.read_text() for p in MODULE.glob("*.tf")))
    for check, colon, reason in skips:
        assert colon and len(reason.strip()) > 20, f"checkov skip {check} has no written reason"
