"""Looking at an AWS cluster: status (EC2's state of each node, then every health check run on its node through
SSM, judged here) and exec (the command on the chosen nodes through SSM, output per node)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from campaign.targets.cluster.inspect import pick_nodes, print_node_output, status_document
from campaign.targets.cluster.state import read_record, write_record
from campaign.targets.cluster_aws import provision
from campaign.targets.cluster_aws.lifecycle import refuse_if_stopped, running_nodes
from campaign.targets.cluster_aws.remote import exec_command, on_nodes
from campaign.targets.cluster_aws.services import check_health

Out = Callable[[str], None]


def status_dict(state_dir: Path, name: str) -> dict[str, Any]:
    record = read_record(state_dir, name)
    found = provision.clients(record)
    states, running = running_nodes(found, record)
    before = [i.healthy_since for i in record.instances]
    verdicts = check_health(found.ssm, record, running)
    if before != [i.healthy_since for i in record.instances]:  # a service's health flipped: remember since when
        write_record(state_dir, record)
    document = status_document(record, verdicts)
    document["region"] = record.region
    document["ec2"] = {
        str(n.index): {"instance_id": n.instance_id, "state": states.get(n.index, "gone")} for n in record.nodes
    }
    return document


def format_ec2(document: dict[str, Any]) -> str:
    nodes = document.get("ec2", {})
    return "nodes: " + ", ".join(f"{index} {n['instance_id']} {n['state']}" for index, n in nodes.items())


def run_exec(state_dir: Path, name: str, on: str, command: str, out: Out, timeout_s: float | None = None) -> int:
    """The command on the chosen nodes through SSM (in parallel); output per node; the number that failed."""
    record = read_record(state_dir, name)
    refuse_if_stopped(record)
    nodes = pick_nodes(record, on)
    found = provision.clients(record)
    answers = on_nodes(found.ssm, [(n, exec_command(record, n, command)) for n in nodes], timeout_s or 600)
    for answer in answers:
        invocation = answer.invocation
        output = invocation.stdout + invocation.stderr
        if invocation.status not in ("Success", "Failed"):
            output += f"\nSSM: {invocation.status}"
        print_node_output(answer.node, invocation.returncode, output, out)
    failed = [a for a in answers if a.invocation.returncode != 0]
    out(f"{len(answers) - len(failed)} succeeded, {len(failed)} failed")
    return len(failed)
