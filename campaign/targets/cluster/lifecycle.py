"""A local cluster's lifecycle: up (or finish a half-up one), deploy a commit, stop, start, down, extend.

Every step writes cluster.json (campaign.targets.cluster.state) as soon as something changed, so a crash
mid-`up` leaves a record that `up --resume` finishes and `down` removes.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import InputError, PreflightRefused, StageFailed
from campaign.spec.cluster import node_role
from campaign.system.git import find_root, head_commit
from campaign.targets.cluster.build import deliver_build
from campaign.targets.cluster.health import port_open
from campaign.targets.cluster.local import (
    alive,
    checkout_commit,
    local_address,
    signal_group,
    start_detached,
    stop_instances,
)
from campaign.targets.cluster.services import (
    load_cluster_spec,
    render_instances,
    report_deploy,
    start_services,
    wait_healthy,
    where_lines,
)
from campaign.targets.cluster.state import (
    ClusterRecord,
    Node,
    cluster_dir,
    list_names,
    read_record,
    record_path,
    write_record,
)

Out = Callable[[str], None]


@dataclass(frozen=True)
class UpRequest:
    name: str
    campaign_file: Path
    state_dir: Path
    nodes: int | None = None
    target: str = "local"
    resume: bool = False
    instance_type: str | None = None  # AWS: every node of this type (a sweep member), whatever the roles say


def up(request: UpRequest, out: Out) -> ClusterRecord:
    """Provision the nodes, start the services in needs order, wait until every health check passes."""
    if request.target != "local":
        raise InputError("cluster up --target aws is not built yet (see issue 12, item 4); use --target local.")
    root = find_root(Path.cwd())
    commit = head_commit(root)
    if commit is None:
        raise PreflightRefused(f"{root} has no commit yet; commit the campaign first.")
    record = _existing_or_new(request, root, commit)
    spec = load_cluster_spec(record.coordinator.checkout, record.campaign_file)
    record.nodes = _nodes(request, record, spec.cluster.nodes if spec.cluster else 1)
    write_record(request.state_dir, record)
    _in_parallel(lambda node: checkout_commit(root, node, record.commit), record.nodes)
    out(deliver_build(record, spec))
    running = {i.key: i for i in record.instances if alive(i.pid)}
    record.instances = [running.get(i.key, i) for i in render_instances(spec, record)]
    _ensure_watchdog(request.state_dir, record)
    _start_and_check(request.state_dir, record, out)
    return record


def _existing_or_new(request: UpRequest, root: Path, commit: str) -> ClusterRecord:
    if record_path(request.state_dir, request.name).exists():
        if not request.resume:
            raise InputError(
                f"cluster {request.name!r} already exists; `campaign cluster up --resume --name "
                f"{request.name}` finishes it, `campaign cluster down --name {request.name}` removes it."
            )
        return read_record(request.state_dir, request.name)
    campaign_file = _relative_to(request.campaign_file, root)
    now = time.time()
    record = ClusterRecord(
        name=request.name,
        target="local",
        repo=str(root),
        campaign_file=campaign_file,
        commit=commit,
        created_at=now,
        expires_at=now,
        state="provisioning",
        nodes=[_node(request.state_dir, request.name, 1)],
    )
    write_record(request.state_dir, record)
    checkout_commit(root, record.coordinator, commit)
    spec = load_cluster_spec(record.coordinator.checkout, campaign_file)
    record.expires_at = now + 3600 * (spec.cluster.max_hours if spec.cluster else 8.0)
    return record


def _relative_to(path: Path, root: Path) -> str:
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return str(absolute.resolve().relative_to(root.resolve()))
    except ValueError:
        raise InputError(
            f"{path} is outside the repository {root}; a cluster runs a committed campaign file."
        ) from None


def _node(state_dir: Path, name: str, index: int) -> Node:
    folder = cluster_dir(state_dir, name) / "nodes" / str(index)
    return Node(index=index, address=local_address(index), role=node_role(index), dir=str(folder.resolve()))


def _nodes(request: UpRequest, record: ClusterRecord, declared: int) -> list[Node]:
    count = request.nodes or (len(record.nodes) if request.resume and len(record.nodes) > 1 else declared)
    if not 1 <= count <= 64:
        raise InputError(f"--nodes {count}: a local cluster has 1 to 64 nodes.")
    return [_node(request.state_dir, record.name, i) for i in range(1, count + 1)]


def _in_parallel(action: Callable[[Node], None], nodes: list[Node]) -> None:
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(action, nodes))


def _ensure_watchdog(state_dir: Path, record: ClusterRecord) -> None:
    if alive(record.watchdog_pid):
        return
    log = cluster_dir(state_dir, record.name) / "watchdog.log"
    record.watchdog_pid = start_detached(
        [sys.executable, "-m", "campaign.targets.cluster.watchdog", str(state_dir.resolve()), record.name], log
    )


def _start_and_check(state_dir: Path, record: ClusterRecord, out: Out) -> bool:
    """Start what is not running, wait for health, record and print where each service answers."""
    try:
        start_services(record)
    finally:
        write_record(state_dir, record)
    verdicts = wait_healthy(record)
    healthy = all(v.healthy for v in verdicts.values())
    record.state = "up" if healthy else record.state
    write_record(state_dir, record)
    out(
        f"cluster {record.name}: {len(record.nodes)} nodes, commit {record.commit[:12]}, "
        f"{'healthy' if healthy else 'NOT healthy'}"
    )
    for line in where_lines(record, verdicts):
        out(line)
    if not healthy:
        raise StageFailed(
            f"cluster {record.name}: a service is not healthy (above); its log is "
            "<node dir>/logs/<service>.log. `campaign cluster status` shows it again."
        )
    return healthy


def deploy(state_dir: Path, name: str, out: Out) -> tuple[int, int]:
    """HEAD's commit to every node, services restarted and health-checked; (succeeded, failed) nodes."""
    record = read_record(state_dir, name)
    root = Path(record.repo)
    commit = head_commit(root) or record.commit
    started = time.monotonic()
    _in_parallel(lambda node: checkout_commit(root, node, commit), record.nodes)
    spec = load_cluster_spec(record.coordinator.checkout, record.campaign_file)
    record.commit = commit
    out(deliver_build(record, spec))
    stop_instances(record.instances)
    record.deployed_at = time.time()
    record.instances = render_instances(spec, record)
    start_services(record)
    verdicts = wait_healthy(record)
    write_record(state_dir, record)
    return report_deploy(record, verdicts, started, out)


def stop(state_dir: Path, name: str, out: Out) -> None:
    record = read_record(state_dir, name)
    survivors = stop_instances(record.instances)
    record.state = "stopped"
    write_record(state_dir, record)
    if survivors:
        raise StageFailed(f"cluster {name}: still running after SIGKILL: {', '.join(survivors)}")
    out(f"cluster {name}: stopped ({len(record.instances)} services); `campaign cluster start` starts them again")


def start(state_dir: Path, name: str, out: Out) -> None:
    record = read_record(state_dir, name)
    _start_and_check(state_dir, record, out)


def down(state_dir: Path, name: str, out: Out, *, from_watchdog: bool = False) -> None:
    """Stop every service and the watchdog, check no port is still bound, remove the cluster's folder."""
    record = read_record(state_dir, name)
    survivors = stop_instances(record.instances)
    if not from_watchdog and record.watchdog_pid is not None:
        signal_group(record.watchdog_pid, signal.SIGKILL)
    bound = [
        f"{record.node(i.node).address}:{p}"
        for i in record.instances
        for p in i.ports
        if port_open(record.node(i.node).address, p, 0.2)
    ]
    if survivors or bound:
        write_record(state_dir, record)
        raise StageFailed(
            f"cluster {name}: left behind: processes {survivors or 'none'}, bound ports {bound or 'none'}"
        )
    shutil.rmtree(cluster_dir(state_dir, name))
    out(f"cluster {name}: down; no service process and no bound port left")


def extend(state_dir: Path, name: str, hours: float, out: Out) -> None:
    record = read_record(state_dir, name)
    record.expires_at = max(record.expires_at, time.time()) + hours * 3600
    write_record(state_dir, record)
    deadline = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.expires_at))
    out(f"cluster {name}: the watchdog now stops it at {deadline}")


def names(state_dir: Path) -> list[str]:
    return list_names(state_dir)
