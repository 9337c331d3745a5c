"""The campaign file's cluster: and services: — strict like the rest, every problem with file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from campaign.errors import InputError
from campaign.spec.cluster import check_condition, parse_condition
from campaign.spec.load import load_campaign

HEAD = """\
name: c
scale_factors: [1]
stages:
  - name: s
    kind: bench
    run: echo hi
"""

GOOD = (
    HEAD
    + """\
cluster:
  nodes: 3
  placement_group: cluster
  roles:
    coordinator: {instance_type: c7i.xlarge, spot: false}
    workers: {instance_type: c7i.large, spot: true}
services:
  - name: master
    on: coordinator
    start: run-master --host {{ node.address }}
    ports: [7077, 8080]
    health: {http: "http://{{ node.address }}:8080/json/", expect: "aliveworkers == {{ cluster.nodes }}"}
  - name: worker
    on: all
    needs: [master]
    start: run-worker {{ node.address }} spark://{{ cluster.coordinator }}:7077
    env: {ROLE: "{{ node.role }}"}
    health: {command: "test -d {{ node.dir }}"}
    ready_timeout: 2m
"""
)


def load(tmp_path: Path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return load_campaign(path)


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as caught:
        load(tmp_path, text)
    return str(caught.value)


def test_a_full_cluster_section_loads(tmp_path: Path):
    spec = load(tmp_path, GOOD)
    assert spec.cluster is not None and spec.cluster.nodes == 3 and spec.cluster.placement_group == "cluster"
    assert spec.cluster.roles["workers"].spot is True and spec.cluster.roles["coordinator"].spot is False
    master, worker = spec.services
    assert (master.on, master.ports, worker.needs, worker.ready_timeout_s) == (
        "coordinator",
        (7077, 8080),
        ("master",),
        120.0,
    )
    assert worker.health.command and master.health.expect


def test_stage_on_all_is_read_back_from_yaml_true(tmp_path: Path):
    spec = load(tmp_path, GOOD.replace("    run: echo hi\n", "    run: echo hi\n    on: all\n"))
    assert spec.stage("s").on == "all"


@pytest.mark.parametrize(
    ("change", "line", "says"),
    [
        (("nodes: 3", "nodes: 0"), 8, "nodes is required, a whole number from 1 to 64"),
        (("placement_group: cluster", "placement_group: tight"), 9, "placement_group is one of cluster"),
        (("spot: true", "spot: maybe"), 12, "spot must be true or false"),
        (("on: coordinator", "on: everywhere"), 15, "on is one of coordinator, workers, all"),
        (("needs: [master]", "needs: [mastr]"), 19, "needs 'mastr', which is not a service"),
        (("ports: [7077, 8080]", "ports: [70770]"), 17, "ports is a list of port numbers"),
        (("{{ node.address }}:8080", "localhost:8080"), 14, "names localhost, which another node cannot reach"),
        (("{{ cluster.coordinator }}", "{{ cluster.coordinatr }}"), 19, "has no attribute 'coordinatr'"),
        (("aliveworkers == {{ cluster.nodes }}", "aliveworkers = 3"), 14, "is not PATH OP VALUE"),
        (("ready_timeout: 2m", "ready_timeout: soon"), 25, "ready_timeout: 'soon' is not a duration"),
        (('{command: "test -d {{ node.dir }}"}', "{}"), 24, "health has exactly one of http"),
        (("    env:", "    colour: red\n    env:"), 23, "unknown key 'colour'"),
    ],
)
def test_bad_cluster_input_is_refused_with_file_and_line(tmp_path: Path, change, line, says):
    message = problems(tmp_path, GOOD.replace(*change))
    assert f"c.yaml:{line}: " in message and says in message, message


def test_services_and_on_all_need_a_cluster(tmp_path: Path):
    text = HEAD.replace("    run: echo hi\n", "    run: echo hi\n    on: all\n")
    text += "services:\n  - name: x\n    start: x\n    health: {command: 'true'}\n"
    message = problems(tmp_path, text)
    assert "c.yaml:4: stage 's': on: all needs a cluster" in message
    assert "c.yaml:8: services run on a cluster" in message


def test_a_cycle_in_services_needs_is_refused(tmp_path: Path):
    message = problems(tmp_path, GOOD.replace("    on: coordinator\n", "    on: coordinator\n    needs: [worker]\n"))
    assert "needs form a cycle" in message


def test_conditions_are_parsed_not_evaluated():
    body = {"aliveworkers": 3, "status": "ALIVE", "workers": [{"state": "ALIVE"}, {"state": "DEAD"}]}
    assert check_condition(parse_condition('aliveworkers == 3 and status == "ALIVE"'), body) is None
    assert check_condition(parse_condition("len(workers) >= 2 and workers[1].state == 'DEAD'"), body) is None
    assert check_condition(parse_condition("aliveworkers == 4"), body) == "aliveworkers is 3, not == 4"
    assert check_condition(parse_condition("cores > 1"), body) == "cores is not in the answer"
    assert check_condition(parse_condition("status > 1"), body) == "status is 'ALIVE', not > 1"
    for bad in ("__import__('os').system('x') == 1", "a == b", "aliveworkers", "a.__class__ == 1 or 1"):
        with pytest.raises(ValueError):
            parse_condition(bad)
