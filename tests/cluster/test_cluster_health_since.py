"""'Healthy since' per node and service: kept in cluster.json, set when a service turns healthy, cleared when it
turns unhealthy, and shown by `status` (the AWS side is in test_cluster_aws_up.py: test_health_flips_are_remembered).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign.targets.cluster.state import ClusterRecord, Instance, Node, note_health

from .conftest import cluster_cli, down_if_up, pids_of
from .test_cluster_lifecycle import tiny_repo


def instance(node: int, since: float | None) -> Instance:
    return Instance("api", node, "run", {}, [], [], None, "true", 200, None, 5.0, healthy_since=since)


def test_note_health_keeps_sets_and_clears_and_says_when_something_flipped():
    nodes = [Node(i, f"127.0.1.{i}", "workers", "/n") for i in (1, 2, 3)]
    record = ClusterRecord("c", "local", "/r", "c.yaml", "0" * 40, 0.0, 1.0, "up", nodes)
    record.instances = [instance(1, 100.0), instance(2, None), instance(3, 50.0)]
    assert note_health(record, {"1/api": True, "2/api": True, "3/api": False}, now=200.0)
    assert [i.healthy_since for i in record.instances] == [100.0, 200.0, None]
    assert not note_health(record, {"1/api": True, "2/api": True, "3/api": False}, now=300.0)  # nothing flipped
    assert [i.healthy_since for i in record.instances] == [100.0, 200.0, None]


@pytest.fixture(autouse=True)
def no_cluster_left(tmp_path: Path) -> Iterator[None]:
    yield
    down_if_up(tmp_path / "repo", tmp_path / "state")


def since_in_record(state: Path) -> dict[str, float | None]:
    record = json.loads((state / "clusters" / "tiny" / "cluster.json").read_text())
    return {f"{i['node']}/{i['service']}": i["healthy_since"] for i in record["instances"]}


def test_status_persists_healthy_since_and_shows_it(tmp_path: Path):
    repo, state = tiny_repo(tmp_path), tmp_path / "state"
    up = cluster_cli(repo, state, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    first = since_in_record(state)
    assert all(first.values()), first
    shown = cluster_cli(repo, state, "status")
    assert shown.returncode == 0
    for key, since in first.items():
        node = key.split("/")[0]
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
        assert any(line.startswith(node) and "healthy" in line and stamp in line for line in shown.stdout.splitlines())

    os.killpg(pids_of(state, "tiny")["2/api"], signal.SIGKILL)
    assert cluster_cli(repo, state, "status").returncode == 4
    after = since_in_record(state)
    assert after == {"1/api": first["1/api"], "2/api": None}  # the flip is written; node 1 keeps its since

    resumed = cluster_cli(repo, state, "up", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert cluster_cli(repo, state, "status").returncode == 0
    again = since_in_record(state)
    assert again["1/api"] == first["1/api"] and again["2/api"] > first["2/api"]
