"""A small local cluster of tiny JSON services (fast): stop/start, up --resume, the watchdog, exec, status."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign.system.process import process_alive
from campaign.targets.cluster.inspect import status_dict
from tests.core.conftest import make_repo

from .conftest import JSON_SERVICE, cluster_cli, down_if_up, pids_of, status_json

CAMPAIGN = """\
name: tiny
scale_factors: [1]
cluster:
  nodes: 2
  max_hours: {max_hours}
services:
  - name: api
    on: all
    start: python scripts/svc.py {{{{ node.address }}}} 9311
    ports: [9311]
    health:
      http: "http://{{{{ node.address }}}}:9311/"
      expect: "ok == true and node == {{{{ node.index }}}}"
    ready_timeout: 20s
stages:
  - name: hello
    kind: bench
    run: echo hello
"""


def tiny_repo(tmp_path: Path, max_hours: float = 8) -> Path:
    return make_repo(
        tmp_path / "repo", {"campaign.yaml": CAMPAIGN.format(max_hours=max_hours), "scripts/svc.py": JSON_SERVICE}
    )


@pytest.fixture(autouse=True)
def no_cluster_left(tmp_path: Path) -> Iterator[None]:
    yield
    down_if_up(tmp_path / "repo", tmp_path / "state")


def listening(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


def test_stop_start_resume_exec_and_down(tmp_path: Path):
    repo, state = tiny_repo(tmp_path), tmp_path / "state"
    up = cluster_cli(repo, state, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "api on node 2 (workers): 127.0.1.2:9311 — healthy" in up.stdout
    assert listening("127.0.1.2", 9311) and not listening("127.0.0.1", 9311)  # bound to the node's own address
    again = cluster_cli(repo, state, "up")
    assert again.returncode == 2 and "up --resume" in again.stderr

    started = time.perf_counter()
    document = status_dict(state, "tiny")
    assert time.perf_counter() - started < 1.0
    assert document["healthy"], [s["detail"] for s in document["services"]]
    assert 7.9 * 3600 < document["watchdog_left_s"] <= 8 * 3600

    os.killpg(pids_of(state, "tiny")["2/api"], signal.SIGKILL)
    code, document = status_json(repo, state, "tiny")
    assert code == 4
    assert [(s["node"], s["healthy"]) for s in document["services"]] == [(1, True), (2, False)]
    resumed = cluster_cli(repo, state, "up", "--resume")
    assert resumed.returncode == 0 and status_json(repo, state, "tiny")[0] == 0, resumed.stderr

    stopped = cluster_cli(repo, state, "stop")
    assert stopped.returncode == 0 and not listening("127.0.1.1", 9311)
    assert status_json(repo, state, "tiny")[0] == 4
    assert cluster_cli(repo, state, "start").returncode == 0
    assert status_json(repo, state, "tiny")[0] == 0

    failing = cluster_cli(repo, state, "exec", "--on", "2", "--", "echo on $CAMPAIGN_NODE_ADDRESS; exit 3")
    assert (
        failing.returncode == 4 and "[2] on 127.0.1.2" in failing.stdout and "0 succeeded, 1 failed" in failing.stdout
    )

    extended = cluster_cli(repo, state, "extend", "--hours", "2")
    assert extended.returncode == 0 and status_json(repo, state, "tiny")[1]["watchdog_left_s"] > 9.9 * 3600
    pids = pids_of(state, "tiny")
    assert cluster_cli(repo, state, "down").returncode == 0
    assert not any(process_alive(pid) for pid in pids.values())
    assert not listening("127.0.1.1", 9311) and not listening("127.0.1.2", 9311)
    assert "no clusters here" in cluster_cli(repo, state, "list").stdout


def test_the_watchdog_brings_the_cluster_down_at_its_max_lifetime(tmp_path: Path):
    repo, state = tiny_repo(tmp_path, max_hours=0.002), tmp_path / "state"  # 7.2 s
    up = cluster_cli(repo, state, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    pids = pids_of(state, "tiny")
    deadline = time.monotonic() + 30
    while (state / "clusters" / "tiny").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not (state / "clusters" / "tiny").exists(), "the watchdog did not bring the cluster down"
    assert not any(process_alive(pid) for pid in pids.values())
    assert not listening("127.0.1.1", 9311)


@pytest.mark.parametrize("on", ["7", "nodes"])
def test_exec_on_a_node_that_is_not_there_is_bad_input(tmp_path: Path, on: str):
    repo, state = tiny_repo(tmp_path), tmp_path / "state"
    assert cluster_cli(repo, state, "up").returncode == 0
    result = cluster_cli(repo, state, "exec", "--on", on, "--", "true")
    assert result.returncode == 2 and "a node number from 1 to 2" in result.stderr


def test_a_port_taken_by_another_process_is_refused_not_mistaken_for_health(tmp_path: Path):
    repo, state = tiny_repo(tmp_path), tmp_path / "state"
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.1.2", 9311))
        squatter.listen()
        result = cluster_cli(repo, state, "up")
    assert result.returncode == 3 and "127.0.1.2:9311 is already in use" in result.stderr
