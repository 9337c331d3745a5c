"""Looking at a cluster: status (per node and service: health, since when, commit, watchdog time left), exec on
nodes in parallel, the list of clusters. Status reads cluster.json and checks every service in parallel, with
a short timeout each: no campaign file is loaded, so it answers in well under a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from campaign.errors import InputError
from campaign.targets.cluster.health import Verdict
from campaign.targets.cluster.local import NodeResult, exec_on, require_checkout
from campaign.targets.cluster.services import check_health
from campaign.targets.cluster.state import ClusterRecord, Node, list_names, read_record, write_record

Out = Callable[[str], None]


def status_dict(state_dir: Path, name: str) -> dict[str, Any]:
    record = read_record(state_dir, name)
    before = [i.healthy_since for i in record.instances]
    verdicts = check_health(record, timeout_s=0.5)
    if before != [i.healthy_since for i in record.instances]:  # a service's health flipped: remember since when
        write_record(state_dir, record)
    return status_document(record, verdicts)


def status_document(record: ClusterRecord, verdicts: dict[str, Verdict]) -> dict[str, Any]:
    """What `status` shows (and --json prints), from the record and this round's verdicts."""
    now = time.time()
    services = [
        {
            "node": i.node,
            "address": record.node(i.node).address,
            "instance_id": record.node(i.node).instance_id,
            "service": i.service,
            "healthy": verdicts[i.key].healthy,
            "detail": verdicts[i.key].detail,
            "pid": i.pid,
            "started_at": i.started_at,
            "healthy_since": i.healthy_since,
        }
        for i in record.instances
    ]
    return {
        "name": record.name,
        "target": record.target,
        "state": record.state,
        "commit": record.commit,
        "deployed_at": record.deployed_at,
        "nodes": len(record.nodes),
        "watchdog_left_s": max(0.0, record.expires_at - now),
        "healthy": all(s["healthy"] for s in services),
        "services": services,
    }


def format_status(document: dict[str, Any]) -> str:
    left = document["watchdog_left_s"]
    lines = [
        f"cluster {document['name']} ({document['target']}): {document['state']}, {document['nodes']} nodes, "
        f"commit {document['commit'][:12]} deployed {_when(document['deployed_at'])}, "
        f"watchdog stops it in {int(left // 3600)}h{int(left % 3600 // 60):02d}m",
        f"{'node':<6}{'address':<12}{'service':<18}{'health':<11}{'since':<21}detail",
    ]
    for s in document["services"]:
        since = s["healthy_since"] if s["healthy"] else s["started_at"]
        health = "healthy" if s["healthy"] else "UNHEALTHY"
        lines.append(f"{s['node']:<6}{s['address']:<12}{s['service']:<18}{health:<11}{_when(since):<21}{s['detail']}")
    return "\n".join(lines)


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def pick_nodes(record: ClusterRecord, on: str) -> list[Node]:
    """--on all | coordinator | workers | N (a node's index)."""
    if on == "all":
        return list(record.nodes)
    if on == "coordinator":
        return [record.coordinator]
    if on == "workers":
        return record.nodes[1:]
    if on.isdigit() and 1 <= int(on) <= len(record.nodes):
        return [record.node(int(on))]
    raise InputError(f"--on {on!r}: all, coordinator, workers, or a node number from 1 to {len(record.nodes)}.")


def run_exec(state_dir: Path, name: str, on: str, command: str, out: Out, timeout_s: float | None = None) -> int:
    """The command on the chosen nodes in parallel; output per node; the number of nodes where it failed."""
    record = read_record(state_dir, name)
    nodes = pick_nodes(record, on)
    for node in nodes:
        require_checkout(node)
    results = exec_on(record, nodes, command, timeout_s)
    for result in results:
        _print_result(result, out)
    failed = [r for r in results if r.returncode != 0]
    out(f"{len(results) - len(failed)} succeeded, {len(failed)} failed")
    return len(failed)


def _print_result(result: NodeResult, out: Out) -> None:
    print_node_output(result.node, result.returncode, result.output, out)


def print_node_output(node: Node, returncode: int, output: str, out: Out) -> None:
    out(f"== {node.label}: exit {returncode}")
    for line in output.splitlines():
        out(f"[{node.index}] {line}")


def list_clusters(state_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for name in list_names(state_dir):
        record = read_record(state_dir, name)
        rows.append(
            {
                "name": name,
                "target": record.target,
                "state": record.state,
                "nodes": len(record.nodes),
                "commit": record.commit,
                "services": len(record.instances),
                "watchdog_left_s": max(0.0, record.expires_at - time.time()),
            }
        )
    return rows
