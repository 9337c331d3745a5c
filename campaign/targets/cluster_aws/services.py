"""Services on an AWS cluster's nodes, through the node program (SSM): checked out, started in `needs` order (a
service starts once the ports of what it needs accept connections), health-checked on the node itself (the GET
or the command runs there; campaign judges the answer with the same code as on a local cluster), stopped."""

from __future__ import annotations

import time
from itertools import groupby
from typing import Any

from campaign.errors import StageFailed
from campaign.targets.cluster.health import Verdict, judge_http
from campaign.targets.cluster.state import ClusterRecord, Instance, Node, identity_env, note_health
from campaign.targets.cluster_aws.remote import Answer, run_program

CHECK_TIMEOUT_S = 2.0


def _failed(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if not a.ok or not isinstance(a.value, dict | list) or _error(a.value)]


def _error(value: Any) -> str | None:
    return value.get("error") if isinstance(value, dict) else None


def checkout(ssm: Any, record: ClusterRecord, nodes: list[Node]) -> None:
    """The record's commit checked out on every node (cloned from the repository's remote the first time)."""
    payload = {"repo": record.repo_url, "commit": record.commit}
    failed = _failed(run_program(ssm, "checkout", [(node, payload) for node in nodes]))
    if failed:
        raise StageFailed(
            f"cluster {record.name}: checking out {record.commit[:12]} failed on "
            + "; ".join(a.detail for a in failed)
            + f". Is the commit pushed to {record.repo_url}? Then `campaign cluster up --resume --name {record.name}`."
        )


def start_services(ssm: Any, record: ClusterRecord) -> None:
    """Each service, in `needs` order, on the nodes it runs on (one SSM command per service)."""
    for service, group in groupby(record.instances, key=lambda i: i.service):
        instances = list(group)
        needs = [
            [record.node(i.node).address, port]
            for i in record.instances
            if i.service in instances[0].needs
            for port in i.ports
        ]
        payloads = [
            (
                record.node(i.node),
                {"env": identity_env(record, record.node(i.node)), "instances": [_start_item(i, needs)]},
            )
            for i in instances
        ]
        answers = run_program(ssm, "start", payloads, timeout_s=max(60.0, instances[0].ready_timeout_s + 30))
        failed = _failed(answers)
        if failed:
            raise StageFailed(
                f"cluster {record.name}: service {service} did not start on "
                + "; ".join(f"{a.detail} {_error(a.value) or ''}".rstrip() for a in failed)
                + f". Its log on the node: /srv/campaign/logs/{service}.log (`campaign cluster exec --on N -- "
                f"tail -50 ../logs/{service}.log`)."
            )
        for instance, answer in zip(instances, answers, strict=True):
            pid = int(answer.value[service])
            if pid != instance.pid:
                instance.pid, instance.started_at, instance.healthy_since = pid, time.time(), None


def _start_item(instance: Instance, needs: list[list[Any]]) -> dict[str, Any]:
    return {
        "service": instance.service,
        "start": instance.start,
        "env": instance.env,
        "needs": needs,
        "ready_timeout_s": instance.ready_timeout_s,
    }


def check_health(ssm: Any, record: ClusterRecord, running: set[int] | None = None) -> dict[str, Verdict]:
    """Every instance's verdict, its check run on its node (the nodes in `running`; the others are not running)."""
    payloads = []
    for node in record.nodes:
        checks = [
            {"key": i.key, "service": i.service, "http": i.http, "command": i.command, "timeout_s": CHECK_TIMEOUT_S}
            for i in record.instances
            if i.node == node.index
        ]
        if checks and (running is None or node.index in running):
            payloads.append((node, {"env": identity_env(record, node), "checks": checks}))
    answers = {a.node.index: a for a in run_program(ssm, "check", payloads, timeout_s=120)}
    verdicts = {i.key: _verdict(i, answers.get(i.node)) for i in record.instances}
    note_health(record, {key: verdict.healthy for key, verdict in verdicts.items()})
    return verdicts


def _verdict(instance: Instance, answer: Answer | None) -> Verdict:
    if answer is None:
        return Verdict(False, f"node {instance.node} is not running (EC2); `campaign cluster start` starts it")
    if not answer.ok or not isinstance(answer.value, list):
        return Verdict(False, f"no health answer from {answer.detail}")
    result: dict[str, Any] = next((r for r in answer.value if r.get("key") == instance.key), {})
    if result.get("error"):
        return Verdict(False, str(result["error"]))
    if instance.http:
        return judge_http(instance, int(result["status"]), str(result.get("body", "")).encode())
    if result.get("exit") != 0:
        return Verdict(False, f"health command exited {result.get('exit')}: {result.get('stderr', '')}")
    return Verdict(True, "health command exited 0")


def wait_healthy(ssm: Any, record: ClusterRecord, poll_s: float = 3.0) -> dict[str, Verdict]:
    """Health checks until all pass, a service's process is gone, or the longest ready_timeout passes."""
    deadline = time.monotonic() + max((i.ready_timeout_s for i in record.instances), default=0.0)
    while True:
        verdicts = check_health(ssm, record)
        failing = [v for v in verdicts.values() if not v.healthy]
        gone = [v for v in failing if v.detail.startswith("not running")]
        if not failing or gone or time.monotonic() > deadline:
            return verdicts
        time.sleep(poll_s)


def stop_services(ssm: Any, record: ClusterRecord) -> list[str]:
    """Every service's process group stopped on its node; what survived (node/service)."""
    payloads = [
        (node, {"services": sorted({i.service for i in record.instances if i.node == node.index})})
        for node in record.nodes
    ]
    survivors = []
    for answer in run_program(ssm, "stop", [p for p in payloads if p[1]["services"]], timeout_s=120):
        if not answer.ok or not isinstance(answer.value, dict):
            survivors.append(f"node {answer.node.index}: {answer.detail}")
        else:
            survivors += [f"{answer.node.index}/{s}" for s in answer.value.get("survivors", [])]
    for instance in record.instances:
        instance.pid, instance.healthy_since = None, None
    return survivors


def arm_watchdog(ssm: Any, record: ClusterRecord, minutes: int) -> None:
    """`shutdown -h +minutes` on every node (again: a stopped and started node forgot it)."""
    answers = run_program(ssm, "watchdog", [(node, {"minutes": minutes}) for node in record.nodes], timeout_s=60)
    failed = [a for a in answers if a in _failed(answers) or a.value.get("exit") != 0]
    if failed:
        raise StageFailed(
            f"cluster {record.name}: the max-lifetime watchdog could not be set on "
            + "; ".join(a.detail for a in failed)
            + f". Retry: `campaign cluster extend --name {record.name} --hours 0.1`."
        )
