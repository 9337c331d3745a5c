"""The campaign file's `cluster:` and `services:`: the nodes a campaign needs and the long-lived processes on them.

    cluster:
      nodes: 3                       # node 1 is the coordinator, nodes 2..N the workers
      placement_group: cluster       # AWS: cluster, spread or partition (or leave it out)
      max_hours: 8                   # the max-lifetime watchdog on every node
      roles:
        coordinator: {instance_type: c7i.xlarge, spot: false}
        workers: {instance_type: c7i.xlarge, spot: true}
    services:
      - name: spark-master
        on: coordinator              # coordinator, workers or all
        start: bash stages/spark/service.sh master
        env: {SPARK_MASTER_HOST: "{{ node.address }}"}
        ports: [7077, 8080]
        needs: []                    # services started (ports open) first
        health:
          http: "http://{{ node.address }}:8080/json/"
          status: 200
          expect: "aliveworkers == {{ cluster.nodes }}"
        ready_timeout: 3m

Templates (start, env values, health) see `node` (address, index, role, dir), `cluster` (name, nodes,
coordinator: the coordinator's address) and `vars`. `expect` is a small condition language, never eval:
`PATH OP VALUE` joined by `and`; PATH is dotted keys and [indices] into the JSON body ($: the body), or len(PATH);
OP is ==, !=, <, <=, >, >=; VALUE a number, a quoted string, true, false or null (see `parse_condition`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ROLES = ("coordinator", "workers")
PLACES = ("coordinator", "workers", "all")
PLACEMENT_STRATEGIES = ("cluster", "spread", "partition")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPS = ("==", "!=", "<=", ">=", "<", ">")
_CLAUSE = re.compile(
    r"^\s*(len\(\s*(?P<lenpath>[^()]+?)\s*\)|(?P<path>[^\s=!<>]+))\s*"
    r"(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?)\s*$"
)
_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
# Placeholders for rendering service templates when nothing runs (load-time validation).
PROBE_ADDRESS = "10.0.0.11"
PROBE_COORDINATOR = "10.0.0.10"


@dataclass(frozen=True)
class RoleSpec:
    instance_type: str | None = None
    spot: bool = False


@dataclass(frozen=True)
class ClusterSpec:
    nodes: int
    line: int
    placement_group: str | None = None
    max_hours: float = 8.0
    roles: dict[str, RoleSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    http: str | None = None
    command: str | None = None
    status: int = 200
    expect: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    line: int
    on: str
    start: str
    health: Health
    ports: tuple[int, ...] = ()
    needs: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 120.0


@dataclass(frozen=True)
class Clause:
    path: tuple[str | int, ...]
    length: bool
    op: str
    value: Any


def parse_condition(text: str) -> tuple[Clause, ...]:
    """`aliveworkers == 3 and len(workers) >= 2` -> clauses; ValueError says what is wrong and the form."""
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise ValueError(
                f"{part!r} is not PATH OP VALUE (e.g. aliveworkers == 3, len(workers) >= 2, "
                f'status == "ALIVE"; OP one of {" ".join(_OPS)})'
            )
        path_text = match["lenpath"] or match["path"]
        clauses.append(
            Clause(_parse_path(path_text), bool(match["lenpath"]), match["op"], _parse_value(match["value"]))
        )
    return tuple(clauses)


def _parse_path(text: str) -> tuple[str | int, ...]:
    if text == "$":
        return ()  # the body itself (e.g. a list: len($))
    parts: list[str | int] = []
    for piece in text.split("."):
        for match in _PATH_PART.finditer(piece):
            parts.append(match[1] if match[1] is not None else int(match[2]))
        if not piece or "".join(m[0] for m in _PATH_PART.finditer(piece)) != piece:
            raise ValueError(f"{text!r} is not a path into the JSON body (keys joined by '.', indices as [0])")
    return tuple(parts)


def _parse_value(text: str) -> Any:
    literals = {"true": True, "false": False, "null": None}
    if text in literals:
        return literals[text]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a value: write a number, a quoted string, true, false or null") from None


def check_condition(clauses: tuple[Clause, ...], body: Any) -> str | None:
    """None when every clause holds on body; otherwise what does not hold (`aliveworkers is 2, not == 3`)."""
    for clause in clauses:
        value: Any = body
        for part in clause.path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return f"{_path_text(clause.path)} is not in the answer"
        if clause.length:
            if not isinstance(value, (list, dict, str)):
                return f"len({_path_text(clause.path)}): not a list"
            value = len(value)
        if not _holds(value, clause.op, clause.value):
            return f"{_path_text(clause.path)} is {value!r}, not {clause.op} {clause.value!r}"
    return None


def _holds(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    numbers = (int, float)
    if not (isinstance(left, numbers) and isinstance(right, numbers)):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _path_text(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "$"


def node_role(index: int) -> str:
    """Node 1 is the coordinator; every other node is a worker."""
    return "coordinator" if index == 1 else "workers"


def runs_on(service_on: str, index: int) -> bool:
    return service_on == "all" or service_on == node_role(index)


def service_context(
    *, name: str, nodes: int, coordinator: str, address: str, index: int, node_dir: str, variables: dict
) -> dict:
    """What a service's templates see on one node."""
    return {
        "node": {"address": address, "index": index, "role": node_role(index), "dir": node_dir},
        "cluster": {"name": name, "nodes": nodes, "coordinator": coordinator},
        "vars": variables,
    }
