"""An AWS cluster's infrastructure: terraform/cluster applied (and destroyed) through the AWS target's own
workspace code and TerraformRunner, its state in `<state-dir>/clusters/<name>/terraform/` (local state: one per
cluster), and the clients for the region. The record is written before `terraform apply` starts, so a crash
mid-apply leaves a cluster that `up --resume` finishes and `down` removes; the nodes are tagged at creation,
so what was launched is found by its tags even without the record.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign.errors import InputError, PreflightRefused
from campaign.spec.cluster import RoleSpec, node_role
from campaign.spec.model import CampaignSpec
from campaign.targets.aws import ec2, infra
from campaign.targets.aws.auth import Auth
from campaign.targets.aws.settings import AwsSettings, load_settings
from campaign.targets.aws.tf import TerraformRunner
from campaign.targets.aws.userdata import render_template
from campaign.targets.cluster.aws_nodes import find_nodes
from campaign.targets.cluster.state import ClusterRecord, Node, cluster_dir
from campaign.targets.cluster_aws.remote import NODE_ROOT

MODULE_DIR = infra.MODULE_DIR / "cluster"
NODE_TEMPLATE = "cluster-node.sh.j2"


@dataclass(frozen=True)
class Clients:
    ec2: Any
    ssm: Any


def settings_for(record: ClusterRecord) -> tuple[AwsSettings, Auth]:
    settings = load_settings(Path(record.repo), region=record.region)
    return settings, Auth(settings)


def clients(record: ClusterRecord) -> Clients:
    """EC2 and SSM clients of the cluster's region, with the configured credentials in effect."""
    settings, auth = settings_for(record)
    auth.activate()
    region = record.region or settings.region
    return Clients(ec2.ec2_client(region), ec2.ssm_client(region))


def workspace(state_dir: Path, name: str) -> Path:
    return cluster_dir(state_dir, name) / "terraform"


def watchdog_minutes(record: ClusterRecord) -> int:
    return max(1, math.ceil((record.expires_at - time.time()) / 60))


def node_userdata(record: ClusterRecord) -> str:
    """Each node's boot script: the max-lifetime watchdog (the node stops, its volume stays) and git. The same
    on every apply (max_hours from boot; `up` then sets the exact time left through SSM): a changed userdata
    would make Terraform stop and start the nodes of a cluster that `up --resume` finishes."""
    lifetime = max(1, round((record.expires_at - record.created_at) / 60))
    return render_template(
        NODE_TEMPLATE, {"cluster": record.name, "watchdog_minutes": lifetime, "node_root": NODE_ROOT}
    )


def variables(record: ClusterRecord, spec: CampaignSpec, settings: AwsSettings, nodes: int) -> dict[str, Any]:
    """terraform/cluster's variables, every one of them."""
    assert spec.cluster is not None
    coordinator = spec.cluster.roles.get("coordinator") or RoleSpec()
    workers = spec.cluster.roles.get("workers") or RoleSpec()
    return {
        "cluster": record.name,
        "campaign": spec.name,
        "commit": record.commit,
        "region": record.region or settings.region,
        "nodes": nodes,
        "coordinator_instance_type": record.instance_type or coordinator.instance_type or settings.instance_type,
        "worker_instance_type": record.instance_type
        or workers.instance_type
        or coordinator.instance_type
        or settings.instance_type,
        "coordinator_spot": coordinator.spot,
        "worker_spot": workers.spot,
        "placement_strategy": spec.cluster.placement_group or "",
        "root_volume_gb": settings.root_volume_gb,
        "bucket": settings.bucket,
        "prefix": settings.prefix.strip("/"),
        "user_data": node_userdata(record),
        "subnet_id": settings.subnet_id,
        "ami_ssm_parameter_prefix": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default",
    }


def refuse_untracked(found: Clients, name: str) -> None:
    """Instances tagged with the cluster but no record here: launched from elsewhere, or the record was lost."""
    nodes = find_nodes(found.ec2, name)
    if nodes:
        ids = " ".join(n.instance_id for n in nodes)
        raise PreflightRefused(
            f"cluster {name}: instances tagged campaign:cluster={name} exist ({ids}) but no record of the cluster "
            f"is here. Bring them down where the cluster was launched (`campaign cluster down --name {name}`), "
            f"or terminate them: aws ec2 terminate-instances --instance-ids {ids}"
        )


def apply(state_dir: Path, record: ClusterRecord, spec: CampaignSpec, nodes: int, out: Any) -> dict[str, Any]:
    """terraform init, plan and apply of terraform/cluster in the cluster's workspace; its outputs."""
    settings, auth = settings_for(record)
    auth.activate()
    if not settings.bucket:  # the nodes' role names the bucket: the AWS target's default one
        settings = settings.with_bucket(f"campaign-{auth.identity().account}-{settings.region}")
    workdir = Path(record.workspace or workspace(state_dir, record.name))
    infra.prepare_workspace(workdir, variables(record, spec, settings, nodes), module_dir=MODULE_DIR)
    runner = TerraformRunner(workdir)
    auth.activate()
    runner.init()
    out(f"terraform plan: {runner.plan()} (workspace {workdir})")
    runner.apply()
    return runner.output()


def place_nodes(record: ClusterRecord, outputs: dict[str, Any]) -> None:
    """The record's nodes from terraform's outputs: node 1 (the coordinator) first."""
    ids, addresses = outputs["instance_ids"], outputs["private_ips"]
    if len(ids) != len(addresses):
        raise InputError("terraform/cluster's outputs instance_ids and private_ips differ in length.")
    record.nodes = [
        Node(index=i, address=addresses[i - 1], role=node_role(i), dir=NODE_ROOT, instance_id=ids[i - 1])
        for i in range(1, len(ids) + 1)
    ]


def destroy(record: ClusterRecord, found: Clients) -> None:
    """terraform destroy in the cluster's workspace, then nothing tagged with the cluster may be left."""
    _, auth = settings_for(record)
    workdir = Path(record.workspace or "")
    if (workdir / infra.VARS_FILE).exists():
        runner = TerraformRunner(workdir)
        auth.activate()
        runner.init()
        runner.destroy()
    left = find_nodes(found.ec2, record.name)
    if left:
        ids = " ".join(n.instance_id for n in left)
        raise PreflightRefused(
            f"cluster {record.name}: terraform destroy finished, but instances tagged campaign:cluster="
            f"{record.name} are left: {ids}. Terminate them: aws ec2 terminate-instances --region "
            f"{record.region} --instance-ids {ids}"
        )
