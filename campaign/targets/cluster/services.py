"""Services on a cluster's nodes: rendered per node from the campaign file, started in `needs` order (a service
starts once the services it needs accept connections on their ports), then health-checked until all pass."""

from __future__ import annotations

import graphlib
import time
from pathlib import Path

from campaign.errors import InputError, PreflightRefused, StageFailed
from campaign.spec.cluster import runs_on, service_context
from campaign.spec.load import load_campaign
from campaign.spec.model import CampaignSpec
from campaign.spec.templating import render
from campaign.targets.base import Out
from campaign.targets.cluster.health import Verdict, check_all, port_open
from campaign.targets.cluster.local import alive, node_env, start_instance
from campaign.targets.cluster.state import ClusterRecord, Instance, note_health


def load_cluster_spec(checkout: Path, campaign_file: str) -> CampaignSpec:
    """The campaign file as committed (read from a node's checkout); it must declare a cluster."""
    path = checkout / campaign_file
    if not path.is_file():
        raise InputError(
            f"{campaign_file} is not in the commit (looked in {checkout}); commit it first "
            f"(git add {campaign_file} && git commit)."
        )
    spec = load_campaign(path)
    if spec.cluster is None:
        raise InputError(f"{campaign_file}:1: has no cluster: section; add cluster: {{nodes: N}} and services.")
    return spec


def render_instances(spec: CampaignSpec, record: ClusterRecord) -> list[Instance]:
    """Every service on every node it runs on, in `needs` order, its templates rendered for that node."""
    order = list(graphlib.TopologicalSorter({s.name: s.needs for s in spec.services}).static_order())
    instances = []
    for name in order:
        service = next(s for s in spec.services if s.name == name)
        for node in record.nodes:
            if not runs_on(service.on, node.index):
                continue
            context = service_context(
                name=record.name,
                nodes=len(record.nodes),
                coordinator=record.coordinator.address,
                address=node.address,
                index=node.index,
                node_dir=node.dir,
                variables=spec.vars,
            )
            health = service.health
            instances.append(
                Instance(
                    service=name,
                    node=node.index,
                    start=render(service.start, context),
                    env={k: render(v, context) for k, v in service.env.items()},
                    ports=list(service.ports),
                    needs=list(service.needs),
                    http=health.http and render(health.http, context),
                    command=health.command and render(health.command, context),
                    status=health.status,
                    expect=health.expect and render(health.expect, context),
                    ready_timeout_s=service.ready_timeout_s,
                )
            )
    return instances


def start_services(record: ClusterRecord) -> None:
    """Start every instance that is not running, in order; wait for the ports of what each needs."""
    for instance in record.instances:
        if alive(instance.pid):
            continue
        for need in instance.needs:
            _wait_ports(record, [i for i in record.instances if i.service == need], instance.ready_timeout_s)
        address = record.node(instance.node).address
        taken = [f"{address}:{port}" for port in instance.ports if port_open(address, port, 0.2)]
        if taken:
            raise PreflightRefused(
                f"{instance.service} on node {instance.node}: {', '.join(taken)} is already in "
                "use by a process this cluster did not start (another cluster? `campaign cluster "
                "list`); stop it first."
            )
        start_instance(record, instance)


def _wait_ports(record: ClusterRecord, needed: list[Instance], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for instance in needed:
        address = record.node(instance.node).address
        for port in instance.ports:
            while not port_open(address, port):
                if time.monotonic() > deadline or not alive(instance.pid):
                    raise StageFailed(
                        f"{instance.service} on node {instance.node} does not accept connections on "
                        f"{address}:{port}; see {record.node(instance.node).dir}/logs/"
                        f"{instance.service}.log"
                    )
                time.sleep(0.2)


def check_health(record: ClusterRecord, timeout_s: float = 2.0) -> dict[str, Verdict]:
    envs = {i.key: node_env(record, record.node(i.node), i.env) for i in record.instances}
    cwds = {i.key: str(record.node(i.node).checkout) for i in record.instances}
    verdicts = check_all(record.instances, envs, cwds, timeout_s)
    note_health(record, {key: verdict.healthy for key, verdict in verdicts.items()})
    return verdicts


def wait_healthy(record: ClusterRecord) -> dict[str, Verdict]:
    """Poll every health check until all pass or the longest ready_timeout passes; the last verdicts."""
    timeout = max((i.ready_timeout_s for i in record.instances), default=0.0)
    deadline = time.monotonic() + timeout
    while True:
        verdicts = check_health(record)
        failing = [key for key, verdict in verdicts.items() if not verdict.healthy]
        gone = [key for key in failing if not alive(_by_key(record, key).pid)]
        if not failing or gone or time.monotonic() > deadline:
            return verdicts
        time.sleep(0.5)


def _by_key(record: ClusterRecord, key: str) -> Instance:
    return next(i for i in record.instances if i.key == key)


def report_deploy(record: ClusterRecord, verdicts: dict[str, Verdict], started: float, out: Out) -> tuple[int, int]:
    """`cluster deploy`'s closing lines, local or AWS: "N succeeded, M failed" by node, then where each answers."""
    failed = {i.node for i in record.instances if not verdicts[i.key].healthy}
    ok = len(record.nodes) - len(failed)
    out(
        f"deploy {record.commit[:12]} to cluster {record.name}: {ok} succeeded, {len(failed)} failed "
        f"({time.monotonic() - started:.1f} s)"
    )
    for line in where_lines(record, verdicts):
        out(line)
    return ok, len(failed)


def where_lines(record: ClusterRecord, verdicts: dict[str, Verdict]) -> list[str]:
    lines = []
    for instance in record.instances:
        node = record.node(instance.node)
        ports = ", ".join(f"{node.address}:{p}" for p in instance.ports) or "no ports"
        verdict = verdicts.get(instance.key)
        state = "healthy" if verdict and verdict.healthy else f"UNHEALTHY: {verdict.detail if verdict else '?'}"
        lines.append(f"  {instance.service} on node {node.index} ({node.role}): {ports} — {state}")
    return lines
