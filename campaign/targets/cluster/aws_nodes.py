"""A cluster's EC2 nodes, found by their tags, driven through EC2 (stop/start) and SSM Run Command (exec, deploy).

Nodes are tagged when created (terraform/cluster: `campaign:cluster`, `campaign:role`, `campaign:index`), so a
half-launched cluster is found by its tags alone. `run_shell` sends one AWS-RunShellScript command to every node
and polls each invocation until it ends or the deadline passes (bounded: never an endless wait on a node that
died). boto3 clients are passed in (Any), so tests hand in clients of moto's server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENDED = {
    "Success",
    "Failed",
    "Cancelled",
    "TimedOut",
    "DeliveryTimedOut",
    "ExecutionTimedOut",
    "Undeliverable",
    "Terminated",
    "InvalidPlatform",
    "AccessDenied",
}
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass(frozen=True)
class AwsNode:
    index: int
    instance_id: str
    role: str
    state: str
    private_ip: str | None


@dataclass(frozen=True)
class Invocation:
    instance_id: str
    status: str
    returncode: int
    stdout: str
    stderr: str


def find_nodes(ec2: Any, cluster: str) -> list[AwsNode]:
    """The cluster's instances that are not terminated, by their tags, node 1 (the coordinator) first."""
    filters = [
        {"Name": "tag:campaign:cluster", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": LIVE_STATES},
    ]
    nodes = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                nodes.append(
                    AwsNode(
                        int(tags.get("campaign:index", "0")),
                        instance["InstanceId"],
                        tags.get("campaign:role", "?"),
                        instance["State"]["Name"],
                        instance.get("PrivateIpAddress"),
                    )
                )
    return sorted(nodes, key=lambda n: n.index)


def stop_nodes(
    ec2: Any,
    nodes: list[AwsNode],
    *,
    timeout_s: float = 600,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """EC2 stop (the volumes stay); waits, bounded, until every node is stopped; each node's last state."""
    ids = [n.instance_id for n in nodes]
    ec2.stop_instances(InstanceIds=ids)
    return _wait_state(ec2, ids, "stopped", timeout_s, poll_s, sleep)


def start_nodes(
    ec2: Any,
    nodes: list[AwsNode],
    *,
    timeout_s: float = 600,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """EC2 start; waits, bounded, until every node runs (then the services are started and health-checked)."""
    ids = [n.instance_id for n in nodes]
    ec2.start_instances(InstanceIds=ids)
    return _wait_state(ec2, ids, "running", timeout_s, poll_s, sleep)


def _wait_state(
    ec2: Any, ids: list[str], wanted: str, timeout_s: float, poll_s: float, sleep: Callable[[float], None]
) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = ec2.describe_instances(InstanceIds=ids)
        states = {i["InstanceId"]: i["State"]["Name"] for r in answer["Reservations"] for i in r["Instances"]}
        if all(state == wanted for state in states.values()) or time.monotonic() > deadline:
            return states
        sleep(poll_s)


def run_shell(
    ssm: Any,
    instance_ids: list[str],
    command: str,
    *,
    timeout_s: float = 600,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Invocation]:
    """One AWS-RunShellScript command on every instance; each invocation polled until it ends or the deadline."""
    sent = ssm.send_command(
        InstanceIds=instance_ids,
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": [command]},
        TimeoutSeconds=max(30, int(timeout_s)),
        Comment="campaign cluster",
    )
    command_id = sent["Command"]["CommandId"]
    deadline = time.monotonic() + timeout_s
    results: dict[str, Invocation] = {}
    while len(results) < len(instance_ids):
        for instance_id in instance_ids:
            if instance_id not in results:
                found = _invocation(ssm, command_id, instance_id)
                if found is not None:
                    results[instance_id] = found
        if len(results) < len(instance_ids):
            if time.monotonic() > deadline:
                for instance_id in set(instance_ids) - set(results):
                    results[instance_id] = Invocation(
                        instance_id, "NoAnswer", 124, "", f"no result after {timeout_s:.0f} s of polling"
                    )
                break
            sleep(poll_s)
    return [results[i] for i in instance_ids]


def _invocation(ssm: Any, command_id: str, instance_id: str) -> Invocation | None:
    """The invocation once it has ended; None while it runs (or before SSM knows of it)."""
    try:
        answer = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except ssm.exceptions.InvocationDoesNotExist:
        return None
    if answer["Status"] not in ENDED:
        return None
    return Invocation(
        instance_id,
        answer["Status"],
        int(answer.get("ResponseCode", -1)),
        answer.get("StandardOutputContent", ""),
        answer.get("StandardErrorContent", ""),
    )
