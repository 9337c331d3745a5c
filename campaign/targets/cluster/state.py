"""A kept cluster's record, `<state-dir>/clusters/<name>/cluster.json`: this module is its only reader and writer.

It holds what `status` needs without loading the campaign file: the nodes (index, address, role, folder),
each service instance rendered for its node (start command, environment, health check, ports), the process
group it runs in and since when, the commit deployed, and the watchdog's deadline. Written whole, through a
temporary file and a rename, so a crash leaves the old record or the new one.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from campaign.errors import InputError

CLUSTER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass
class Node:
    index: int
    address: str
    role: str
    dir: str
    instance_id: str | None = None  # AWS: the node's EC2 instance

    @property
    def checkout(self) -> Path:
        return Path(self.dir) / "checkout"

    @property
    def label(self) -> str:
        return f"node {self.index} ({self.address}, {self.role})"


@dataclass
class Instance:
    """One service on one node, rendered for it."""

    service: str
    node: int
    start: str
    env: dict[str, str]
    ports: list[int]
    needs: list[str]
    http: str | None
    command: str | None
    status: int
    expect: str | None
    ready_timeout_s: float
    pid: int | None = None
    started_at: float | None = None
    healthy_since: float | None = None

    @property
    def key(self) -> str:
        return f"{self.node}/{self.service}"


@dataclass
class ClusterRecord:
    name: str
    target: str
    repo: str
    campaign_file: str
    commit: str
    created_at: float
    expires_at: float
    state: str  # provisioning, up, stopped
    nodes: list[Node]
    instances: list[Instance] = field(default_factory=list)
    watchdog_pid: int | None = None
    deployed_at: float = field(default_factory=time.time)
    region: str | None = None  # AWS: where the nodes are
    workspace: str | None = None  # AWS: the cluster's Terraform workspace (its state)
    repo_url: str | None = None  # AWS: what the nodes clone
    instance_type: str | None = None  # AWS: every node's type (a sweep member's); None: the campaign's roles'

    @property
    def instance_ids(self) -> list[str]:
        return [n.instance_id for n in self.nodes if n.instance_id]

    @property
    def coordinator(self) -> Node:
        return self.nodes[0]

    def node(self, index: int) -> Node:
        return self.nodes[index - 1]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterRecord:
        data: dict[str, Any] = json.loads(text)
        data["nodes"] = [Node(**n) for n in data["nodes"]]
        data["instances"] = [Instance(**i) for i in data.get("instances", [])]
        return cls(**data)


def identity_env(record: ClusterRecord, node: Node) -> dict[str, str]:
    """What every process on a node sees, locally and on AWS: its own address, index and role, the coordinator's
    address, the cluster and the commit deployed."""
    return {
        "CAMPAIGN_CLUSTER": record.name,
        "CAMPAIGN_CLUSTER_COORDINATOR": record.coordinator.address,
        "CAMPAIGN_CLUSTER_NODES": str(len(record.nodes)),
        "CAMPAIGN_NODE_ADDRESS": node.address,
        "CAMPAIGN_NODE_INDEX": str(node.index),
        "CAMPAIGN_NODE_ROLE": node.role,
        "CAMPAIGN_COMMIT": record.commit,
    }


def note_health(record: ClusterRecord, healthy: dict[str, bool], now: float | None = None) -> bool:
    """Each instance's healthy_since after a round of checks: kept while healthy, set when it turns healthy,
    cleared when it turns unhealthy. True when something flipped (the record is worth writing)."""
    stamp = time.time() if now is None else now
    flipped = False
    for instance in record.instances:
        if instance.key not in healthy:
            continue
        was = instance.healthy_since
        instance.healthy_since = (was or stamp) if healthy[instance.key] else None
        flipped = flipped or (was is None) != (instance.healthy_since is None)
    return flipped


def check_name(name: str) -> str:
    if not CLUSTER_NAME.match(name):
        raise InputError(
            f"cluster name {name!r}: lowercase letters, digits and '-', at most 40, starting with a "
            "letter or digit (it names folders, and tags on AWS)."
        )
    return name


def clusters_dir(state_dir: Path) -> Path:
    return state_dir / "clusters"


def cluster_dir(state_dir: Path, name: str) -> Path:
    return clusters_dir(state_dir) / check_name(name)


def record_path(state_dir: Path, name: str) -> Path:
    return cluster_dir(state_dir, name) / "cluster.json"


def write_record(state_dir: Path, record: ClusterRecord) -> None:
    path = record_path(state_dir, record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(record.to_json())
    os.replace(temporary, path)


def read_record(state_dir: Path, name: str) -> ClusterRecord:
    path = record_path(state_dir, name)
    try:
        return ClusterRecord.from_json(path.read_text())
    except FileNotFoundError:
        known = ", ".join(list_names(state_dir)) or "none"
        raise InputError(
            f"no cluster {name!r} in {clusters_dir(state_dir)} (clusters: {known}); "
            "`campaign cluster up` brings one up."
        ) from None


def list_names(state_dir: Path) -> list[str]:
    root = clusters_dir(state_dir)
    return sorted(p.parent.name for p in root.glob("*/cluster.json")) if root.is_dir() else []


def resolve_name(state_dir: Path, name: str | None) -> str:
    """The cluster named, or the only one there is."""
    if name:
        return check_name(name)
    names = list_names(state_dir)
    if len(names) != 1:
        raise InputError(f"{len(names)} clusters here ({', '.join(names) or 'none'}): name one with --name NAME.")
    return names[0]
