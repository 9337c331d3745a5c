"""Reading and checking `cluster:` and `services:` (and stages' `on:`), every problem with file:line."""

from __future__ import annotations

import graphlib
import re
from typing import Any, Protocol

from campaign.spec.cluster import (
    ENV_NAME,
    PLACEMENT_STRATEGIES,
    PLACES,
    PROBE_ADDRESS,
    PROBE_COORDINATOR,
    ROLES,
    SERVICE_NAME,
    ClusterSpec,
    Health,
    RoleSpec,
    Service,
    parse_condition,
    service_context,
)
from campaign.spec.templating import TemplateProblem, render
from campaign.spec.yamlmarks import LocatedDict

CLUSTER_KEYS = {"nodes", "roles", "placement_group", "max_hours"}
ROLE_KEYS = {"instance_type", "spot"}
SERVICE_KEYS = {"name", "on", "start", "env", "ports", "needs", "health", "ready_timeout", "description"}
HEALTH_KEYS = {"http", "command", "status", "expect"}
MAX_NODES = 64
# What another node can never reach: a service's address must be the node's own ({{ node.address }}).
_LOOPBACK_NAME = re.compile(r"\b(localhost|127\.0\.0\.1|0\.0\.0\.0)\b")


def on_key(entry: LocatedDict) -> LocatedDict:
    """YAML 1.1 reads a bare `on` key as true (as GitHub Actions files know): take it back as `on`."""
    if True in entry and "on" not in entry:
        line = entry.key_lines.get(True, entry.line)  # type: ignore[call-overload]
        entry["on"] = entry.pop(True)
        entry.key_lines["on"] = line
    return entry


class ProblemSink(Protocol):
    def add(self, line: int, message: str) -> None: ...


def parse_cluster(document: LocatedDict, problems: ProblemSink) -> ClusterSpec | None:
    value = document.get("cluster")
    if value is None:
        return None
    line = document.line_of("cluster")
    if not isinstance(value, LocatedDict):
        problems.add(line, "cluster must be a mapping, e.g. cluster: {nodes: 3}.")
        return None
    _check_keys(value, CLUSTER_KEYS, "cluster", problems)
    nodes = value.get("nodes")
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= MAX_NODES:
        problems.add(
            value.line_of("nodes"),
            f"cluster: nodes is required, a whole number from 1 to {MAX_NODES} "
            "(node 1 is the coordinator, the others are workers).",
        )
        nodes = 1
    placement = value.get("placement_group")
    if placement is not None and placement not in PLACEMENT_STRATEGIES:
        problems.add(
            value.line_of("placement_group"),
            "cluster: placement_group is one of "
            f"{', '.join(PLACEMENT_STRATEGIES)} (or left out for none), not {placement!r}.",
        )
        placement = None
    max_hours = value.get("max_hours", 8)
    if not isinstance(max_hours, (int, float)) or isinstance(max_hours, bool) or not 0 < max_hours <= 168:
        problems.add(
            value.line_of("max_hours"),
            "cluster: max_hours is the watchdog's lifetime in hours, a number above 0 and at most 168.",
        )
        max_hours = 8
    return ClusterSpec(
        nodes=nodes,
        line=line,
        placement_group=placement,
        max_hours=float(max_hours),
        roles=_parse_roles(value, problems),
    )


def _parse_roles(cluster: LocatedDict, problems: ProblemSink) -> dict[str, RoleSpec]:
    roles = cluster.get("roles")
    if roles is None:
        return {}
    if not isinstance(roles, LocatedDict):
        problems.add(cluster.line_of("roles"), "cluster: roles is a mapping of coordinator and workers.")
        return {}
    _check_keys(roles, set(ROLES), "cluster: roles", problems)
    parsed = {}
    for role, spec in roles.items():
        if not isinstance(spec, LocatedDict):
            problems.add(
                roles.line_of(role),
                f"cluster: roles: {role} is a mapping, e.g. {{instance_type: c7i.xlarge, spot: true}}.",
            )
            continue
        _check_keys(spec, ROLE_KEYS, f"cluster: roles: {role}", problems)
        instance_type, spot = spec.get("instance_type"), spec.get("spot", False)
        if instance_type is not None and not (isinstance(instance_type, str) and "." in instance_type):
            problems.add(
                spec.line_of("instance_type"),
                f"cluster: roles: {role}: instance_type is an EC2 "
                f"instance type such as c7i.xlarge, not {instance_type!r}.",
            )
        if not isinstance(spot, bool):
            problems.add(spec.line_of("spot"), f"cluster: roles: {role}: spot must be true or false.")
            spot = False
        parsed[role] = RoleSpec(instance_type if isinstance(instance_type, str) else None, spot)
    return parsed


def parse_services(document: LocatedDict, problems: ProblemSink, parse_duration: Any) -> tuple[Service, ...]:
    entries = document.get("services")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        problems.add(document.line_of("services"), "services must be a list of services.")
        return ()
    services: dict[str, Service] = {}
    for entry in entries:
        if not isinstance(entry, LocatedDict):
            problems.add(document.line_of("services"), "each entry of services is a mapping with name and start.")
            continue
        service = _parse_service(on_key(entry), problems, parse_duration)
        if service.name in services:
            problems.add(
                entry.line_of("name"),
                f"service '{service.name}': the name is already used by the "
                f"service at line {services[service.name].line}; service names must be unique.",
            )
            continue
        services[service.name] = service
    return tuple(services.values())


def _parse_service(entry: LocatedDict, problems: ProblemSink, parse_duration: Any) -> Service:
    raw_name = entry.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    where = f"service '{name}'" if name else "a service"
    _check_keys(entry, SERVICE_KEYS, where, problems)
    if not SERVICE_NAME.match(name):
        problems.add(entry.line_of("name"), f"{where}: name is required: letters, digits, '-', '_' or '.'.")
    on = entry.get("on", "all")
    if on not in PLACES:
        problems.add(entry.line_of("on"), f"{where}: on is one of {', '.join(PLACES)}, not {on!r}.")
    start = entry.get("start")
    if not isinstance(start, str) or not start.strip():
        problems.add(
            entry.line_of("start"),
            f"{where}: start is required: the command that runs the service "
            "in the foreground (campaign keeps its process tree).",
        )
    timeout = 120.0
    if "ready_timeout" in entry:
        try:
            timeout = parse_duration(entry["ready_timeout"])
        except ValueError as err:
            problems.add(entry.line_of("ready_timeout"), f"{where}: ready_timeout: {err}.")
    return Service(
        name=name,
        line=entry.line,
        on=str(on),
        start=start if isinstance(start, str) else "",
        health=_parse_health(entry, where, problems),
        ports=_parse_ports(entry, where, problems),
        needs=_names(entry, "needs", where, problems),
        env=_parse_env(entry, where, problems),
        ready_timeout_s=timeout,
    )


def _parse_health(entry: LocatedDict, where: str, problems: ProblemSink) -> Health:
    health = entry.get("health")
    line = entry.line_of("health")
    if not isinstance(health, LocatedDict):
        problems.add(
            line,
            f"{where}: health is required: {{http: URL, status: 200, expect: CONDITION}} or "
            "{command: CMD} (exit 0 means healthy).",
        )
        return Health(command="true")
    _check_keys(health, HEALTH_KEYS, f"{where}: health", problems)
    http, command = health.get("http"), health.get("command")
    if (http is None) == (command is None) or not isinstance(http or command, str):
        problems.add(line, f"{where}: health has exactly one of http (a URL) or command (a shell command).")
    status = health.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        problems.add(health.line_of("status"), f"{where}: health: status is an HTTP status such as 200.")
        status = 200
    expect = health.get("expect")
    if expect is not None and (not isinstance(expect, str) or command is not None):
        problems.add(
            health.line_of("expect"),
            f"{where}: health: expect is a condition string on an http "
            'check\'s JSON body, e.g. "aliveworkers == {{ cluster.nodes }}".',
        )
        expect = None
    return Health(
        http=http if isinstance(http, str) else None,
        command=command if isinstance(command, str) else None,
        status=status,
        expect=expect,
    )


def _parse_ports(entry: LocatedDict, where: str, problems: ProblemSink) -> tuple[int, ...]:
    ports = entry.get("ports", [])
    if not isinstance(ports, list) or not all(isinstance(p, int) and 1 <= p <= 65535 for p in ports):
        problems.add(entry.line_of("ports"), f"{where}: ports is a list of port numbers (1-65535).")
        return ()
    return tuple(ports)


def _parse_env(entry: LocatedDict, where: str, problems: ProblemSink) -> dict[str, str]:
    env = entry.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and ENV_NAME.match(k) for k in env):
        problems.add(entry.line_of("env"), f"{where}: env maps variable names to values.")
        return {}
    return {key: str(value) for key, value in env.items()}


def _names(entry: LocatedDict, key: str, where: str, problems: ProblemSink) -> tuple[str, ...]:
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(entry.line_of(key), f"{where}: {key} is a list of names.")
        return ()
    return tuple(value)


def _check_keys(mapping: LocatedDict, allowed: set[str], where: str, problems: ProblemSink) -> None:
    for key in mapping:
        if key not in allowed:
            problems.add(
                mapping.line_of(key), f"{where}: unknown key '{key}'. Allowed keys: {', '.join(sorted(allowed))}."
            )


def check_services(
    cluster: ClusterSpec | None,
    services: tuple[Service, ...],
    variables: dict,
    problems: ProblemSink,
    *,
    services_line: int,
) -> None:
    """needs known and acyclic; templates render; no loopback name; conditions parse; a cluster exists."""
    if services and cluster is None:
        problems.add(services_line, "services run on a cluster: add cluster: {nodes: N} to the campaign file.")
    known = {s.name for s in services}
    for service in services:
        for need in service.needs:
            if need not in known:
                problems.add(
                    service.line,
                    f"service '{service.name}': needs '{need}', which is not a service. "
                    f"Known services: {', '.join(sorted(known))}.",
                )
    try:
        graphlib.TopologicalSorter({s.name: [n for n in s.needs if n in known] for s in services}).prepare()
    except graphlib.CycleError as err:
        problems.add(services[0].line, f"services' needs form a cycle: {' -> '.join(err.args[1])}.")
    for service in services:
        _check_service_templates(service, cluster.nodes if cluster else 1, variables, problems)


def _check_service_templates(service: Service, nodes: int, variables: dict, problems: ProblemSink) -> None:
    where = f"service '{service.name}'"
    context = service_context(
        name="CLUSTER",
        nodes=nodes,
        coordinator=PROBE_COORDINATOR,
        address=PROBE_ADDRESS,
        index=2,
        node_dir="/NODE",
        variables=variables,
    )
    sources = [
        ("start", service.start),
        *((f"env {k}", v) for k, v in service.env.items()),
        ("health http", service.health.http),
        ("health command", service.health.command),
        ("health expect", service.health.expect),
    ]
    for label, source in sources:
        if not source:
            continue
        try:
            rendered = render(source, context)
        except TemplateProblem as err:
            problems.add(service.line, f"{where}: {label} {source!r}: {err}.")
            continue
        loopback = _LOOPBACK_NAME.search(rendered)
        if loopback:
            problems.add(
                service.line,
                f"{where}: {label} names {loopback[0]}, which another node cannot reach "
                "(and a node's services bind its own address). Use {{ node.address }} for this node "
                "and {{ cluster.coordinator }} for the coordinator.",
            )
        if label == "health expect":
            try:
                parse_condition(rendered)
            except ValueError as err:
                problems.add(service.line, f"{where}: health expect: {err}.")
