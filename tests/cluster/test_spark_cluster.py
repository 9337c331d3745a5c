"""The acceptance of issue 12 on this machine, with real processes: a 3-node local Spark standalone cluster
(examples/spark-cluster.yaml) comes up healthy, runs TPC-H at SF 0.01 with valid answers, `exec` reaches every
node, a killed worker shows unhealthy by node and service, `deploy` of a new commit restarts everything healthy,
and `down` leaves no process and no bound port.

One cluster for the whole module (Spark starts slowly on 2 cores); the tests run in file order, each leaving the
cluster as the next expects it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign.system.process import process_alive
from campaign.targets.cluster.inspect import status_dict
from tests.core.conftest import REPO_ROOT, git, make_repo

from .conftest import cluster_cli, down_if_up, pids_of, status_json

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime (.ci/run installs one)")

NAME = "spark-tpch"
ADDRESSES = ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
PORTS = {"127.0.1.1": [7077, 8080, 7078, 8081], "127.0.1.2": [7078, 8081], "127.0.1.3": [7078, 8081]}


class Cluster:
    def __init__(self, repo: Path, state: Path) -> None:
        self.repo, self.state = repo, state

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return cluster_cli(self.repo, self.state, *args, timeout=timeout)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("spark")
    repo = make_repo(root / "repo", {})
    shutil.copytree(REPO_ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "examples", repo / "examples")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "spark campaign")
    cluster = Cluster(repo, root / "state")
    up = cluster.cli("up", "-f", "examples/spark-cluster.yaml", timeout=400)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield cluster
    finally:
        down_if_up(repo, cluster.state)


def listening(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


def test_up_is_healthy_with_every_port_on_its_own_node(spark: Cluster):
    code, document = status_json(spark.repo, spark.state, NAME)
    assert code == 0 and document["healthy"], document
    assert sorted((s["node"], s["service"]) for s in document["services"]) == [
        (1, "spark-master"),
        (1, "spark-worker"),
        (2, "spark-worker"),
        (3, "spark-worker"),
    ]
    for address, ports in PORTS.items():
        assert all(listening(address, port) for port in ports), address
    assert not listening("127.0.0.1", 8081), "a worker's port is bound beyond its node's address"


def test_status_answers_in_under_a_second(spark: Cluster):
    started = time.perf_counter()
    document = status_dict(spark.state, NAME)
    assert time.perf_counter() - started < 1.0 and document["healthy"]


def test_exec_reaches_every_node(spark: Cluster):
    result = spark.cli("exec", "--", "echo at $CAMPAIGN_NODE_ADDRESS as $CAMPAIGN_NODE_ROLE; java -version")
    assert result.returncode == 0, result.stdout + result.stderr
    for index, address in enumerate(ADDRESSES, start=1):
        assert f"[{index}] at {address}" in result.stdout
    assert "3 succeeded, 0 failed" in result.stdout


def test_tpch_sf0_01_on_the_cluster_gives_valid_answers(spark: Cluster, tmp_path: Path):
    store = tmp_path / "store"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "campaign.cli",
            "run",
            "sf0.01",
            "-f",
            "examples/spark-cluster.yaml",
            "--cluster",
            NAME,
            "--state-dir",
            str(spark.state),
            "--store",
            str(store),
        ],
        cwd=spark.repo,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    outputs = store / "runs" / run_id / "outputs" / "results" / "sf0.01"
    records = [json.loads(line) for line in (outputs / "spark.jsonl").read_text().splitlines()]
    assert {r["query"] for r in records} == {f"q{n:02d}" for n in range(1, 23)}
    assert {r["engine"] for r in records} == {"spark"}
    assert all(r["ok"] and r["valid"] is True for r in records), [r for r in records if not r["valid"]][:2]
    logs = spark.state / "runs" / run_id / "logs"
    for index in range(1, len(ADDRESSES) + 1):  # the `on: all` stage: a log per node
        assert f"node {index} ok" in (logs / f"node-check.log.node{index}.log").read_text()


def test_a_killed_worker_shows_unhealthy_by_node_and_service(spark: Cluster):
    os.killpg(pids_of(spark.state, NAME)["3/spark-worker"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        code, document = status_json(spark.repo, spark.state, NAME)
        unhealthy = {(s["node"], s["service"]) for s in document["services"] if not s["healthy"]}
        if unhealthy == {(3, "spark-worker"), (1, "spark-master")} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 4 and unhealthy == {(3, "spark-worker"), (1, "spark-master")}, document
    details = {(s["node"], s["service"]): s["detail"] for s in document["services"]}
    assert "not running" in details[(3, "spark-worker")]
    assert "aliveworkers is 2, not == 3" in details[(1, "spark-master")]
    text = spark.cli("status")
    assert text.returncode == 4 and "3     127.0.1.3   spark-worker      UNHEALTHY" in text.stdout


def test_a_run_of_another_commit_is_refused_until_deploy_restarts_it_healthy(spark: Cluster):
    (spark.repo / "NOTES.md").write_text("a new commit\n")
    git(spark.repo, "add", "NOTES.md")
    git(spark.repo, "commit", "-q", "-m", "new commit")
    head = git(spark.repo, "rev-parse", "HEAD").strip()
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "campaign.cli",
            "run",
            "sf0.01",
            "-f",
            "examples/spark-cluster.yaml",
            "--cluster",
            NAME,
            "--state-dir",
            str(spark.state),
        ],
        cwd=spark.repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 3 and "cluster deploy" in refused.stderr, refused.stderr
    deployed = spark.cli("deploy", timeout=400)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "3 succeeded, 0 failed" in deployed.stdout
    code, document = status_json(spark.repo, spark.state, NAME)
    assert code == 0 and document["healthy"] and document["commit"] == head
    for index in (1, 2, 3):
        assert (spark.state / "clusters" / NAME / "nodes" / str(index) / "checkout" / "NOTES.md").exists()


def test_down_leaves_no_process_and_no_bound_port(spark: Cluster):
    pids = pids_of(spark.state, NAME)
    watchdog = json.loads((spark.state / "clusters" / NAME / "cluster.json").read_text())["watchdog_pid"]
    result = spark.cli("down")
    assert result.returncode == 0, result.stderr
    assert not any(process_alive(pid) for pid in [*pids.values(), watchdog])
    node_dirs = str(spark.state / "clusters" / NAME)
    for entry in Path("/proc").iterdir():  # no process at all still running from a node's folder
        if entry.name.isdigit() and process_alive(int(entry.name)):
            try:
                assert node_dirs not in (entry / "cmdline").read_bytes().decode(errors="replace")
                assert not os.readlink(entry / "cwd").startswith(node_dirs)
            except OSError:
                continue  # ended meanwhile, or not ours to read (pid 1's cwd)
    for address, ports in PORTS.items():
        assert not any(listening(address, port) for port in ports), address
    assert not (spark.state / "clusters" / NAME).exists()
