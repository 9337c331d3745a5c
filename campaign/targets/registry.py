"""The targets a run can use, by name. A target's module is imported only when it is asked for, so
`campaign plan` on this machine never loads boto3's EC2 client or python-terraform."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from campaign.errors import InputError
from campaign.targets.base import CloudTarget, Target

TARGETS = {
    "local": "campaign.targets.local.target:LocalTarget",
    "aws": "campaign.targets.aws.adapter:AwsTarget",
    "cluster": "campaign.targets.cluster.target:ClusterTarget",
    "cluster-aws": "campaign.targets.cluster_aws.target:AwsClusterTarget",
    "cluster-aws-sweep": "campaign.targets.cluster_aws.sweep_member:ClusterSweepMemberTarget",
}


def get_target(name: str) -> Target:
    try:
        module_name, class_name = TARGETS[name].split(":")
    except KeyError:
        raise InputError(f"unknown target {name!r}; the targets are {', '.join(TARGETS)}.") from None
    target: Target = getattr(importlib.import_module(module_name), class_name)()
    return target


def get_cluster_target(state_dir: Path, name: str) -> Target:
    """`--cluster NAME`'s target: its record says local (the agent runs here) or aws (it runs on the coordinator)."""
    from campaign.targets.cluster.state import read_record, record_path

    aws = record_path(state_dir, name).exists() and read_record(state_dir, name).target == "aws"
    return get_target("cluster-aws" if aws else "cluster")


def get_cloud_target(name: str) -> CloudTarget:
    """A target that provisions machines (for `down`, `doctor`, `plan --show-userdata`)."""
    target = get_target(name)
    if not isinstance(target, CloudTarget):
        raise InputError(f"the {name} target provisions nothing: there is no userdata, nothing to bring down.")
    return target


CLUSTER_BACKENDS = {
    "local": "campaign.targets.cluster",
    "aws": "campaign.targets.cluster_aws",
}  # lifecycle, inspect, sessions


def cluster_backend(target: str, part: str) -> Any:
    """A cluster target's module (`lifecycle` or `inspect`), imported when asked for (the AWS one loads Terraform)."""
    return importlib.import_module(f"{CLUSTER_BACKENDS[target]}.{part}")
