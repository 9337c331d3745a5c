"""Local cluster nodes: each node a folder with its own checkout, its services separate process trees (each in a
session of its own, so its whole group is stopped at once) bound to the node's own loopback address 127.0.1.N,
with the same ports as on AWS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import PreflightRefused
from campaign.system.checkout import prepare_checkout
from campaign.system.git import git
from campaign.system.process import process_alive
from campaign.targets.cluster.state import ClusterRecord, Instance, Node, identity_env

STOP_GRACE_S = 10.0


def local_address(index: int) -> str:
    """Node N's own address: 127.0.1.N (Linux routes all of 127.0.0.0/8 to the loopback interface)."""
    return f"127.0.1.{index}"


def checkout_commit(repo: Path, node: Node, commit: str) -> None:
    """The node's checkout at commit: a fresh shared clone, or the existing one fetched and switched."""
    if not node.checkout.exists():
        prepare_checkout(repo, commit, node.checkout, dirty=False)
        return
    git(node.checkout, "fetch", "--quiet", str(repo), commit)
    git(node.checkout, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", commit)


def node_env(record: ClusterRecord, node: Node, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What every process on a node sees: its own address, index and role, and the coordinator's address."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(identity_env(record, node), CAMPAIGN_NODE_DIR=node.dir)
    env.update(extra or {})
    return env


def start_instance(record: ClusterRecord, instance: Instance) -> None:
    """Start the service in the foreground of its own session; its output goes to the node's logs/."""
    node = record.node(instance.node)
    logs = Path(node.dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{instance.service}.log", "ab") as log:
        log.write(f"\n== {time.strftime('%Y-%m-%dT%H:%M:%S')} start {instance.start}\n".encode())
        log.flush()
        process = subprocess.Popen(
            ["bash", "-c", instance.start],
            cwd=node.checkout,
            env=node_env(record, node, instance.env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    instance.pid, instance.started_at, instance.healthy_since = process.pid, time.time(), None


def stop_instances(instances: list[Instance]) -> list[str]:
    """SIGTERM every instance's process group, SIGKILL what is left after the grace; returns what survived."""
    groups = [i.pid for i in instances if i.pid is not None]
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pgid in groups:
        if _group_alive(pgid):
            signal_group(pgid, signal.SIGKILL)
    time.sleep(0.2)
    survivors = [i.key for i in instances if i.pid is not None and _group_alive(i.pid)]
    for instance in instances:
        instance.pid, instance.healthy_since = None, None
    return survivors


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _group_alive(pgid: int) -> bool:
    """Any live member of the process group (a service's children included)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@dataclass(frozen=True)
class NodeResult:
    node: Node
    returncode: int
    output: str


def exec_on(record: ClusterRecord, nodes: list[Node], command: str, timeout_s: float | None) -> list[NodeResult]:
    """Run command on every node in parallel (bash, in the node's checkout, with its environment)."""

    def one(node: Node) -> NodeResult:
        try:
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=node.checkout,
                env=node_env(record, node),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as err:
            partial = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
            return NodeResult(node, 124, f"{partial}timed out after {timeout_s} s\n")
        return NodeResult(node, result.returncode, result.stdout + result.stderr)

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return list(pool.map(one, nodes))


def start_detached(argv: list[str], log: Path) -> int:
    """A process that outlives this command (the watchdog), in its own session."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        ).pid


def require_checkout(node: Node) -> None:
    if not node.checkout.exists():
        raise PreflightRefused(
            f"{node.label} has no checkout at {node.checkout}; `campaign cluster up --resume` finishes the cluster."
        )


def alive(pid: int | None) -> bool:
    return pid is not None and process_alive(pid)
