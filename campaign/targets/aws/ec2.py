"""What EC2 says about a run's instances: still alive, or left over after teardown."""

from __future__ import annotations

from typing import Any

from campaign.targets.aws.watch import GONE_INSTANCE_STATES

RUN_TAG = "campaign:run-id"


def ec2_client(region: str) -> Any:
    import boto3

    return boto3.client("ec2", region_name=region)


def ssm_client(region: str) -> Any:
    import boto3

    return boto3.client("ssm", region_name=region)


def instance_states(client: Any, instance_ids: list[str]) -> dict[str, str]:
    """Instance id -> state name ('running', 'terminated', ...); an id EC2 no longer knows is 'terminated'."""
    from botocore.exceptions import ClientError

    states = {instance_id: "terminated" for instance_id in instance_ids}
    try:
        pages = client.get_paginator("describe_instances").paginate(InstanceIds=instance_ids)
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    states[instance["InstanceId"]] = instance["State"]["Name"]
    except ClientError as err:
        if "InvalidInstanceID.NotFound" not in str(err):
            raise
    return states


def any_alive(client: Any, instance_ids: list[str]) -> bool:
    return any(state not in GONE_INSTANCE_STATES for state in instance_states(client, instance_ids).values())


def leftover_instances(client: Any, run_id: str) -> list[str]:
    """Instances tagged with run_id that are not terminated (what a teardown must leave: none)."""
    pages = client.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": f"tag:{RUN_TAG}", "Values": [run_id]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )
    return sorted(
        instance["InstanceId"]
        for page in pages
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    )
