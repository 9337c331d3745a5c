"""The ready-made service definitions (examples/services/*.yaml: Trino, Ballista, DataFusion distributed) and the
Spark example render for a cluster with AWS-like private addresses and lint: the campaign file loads, each
rendered start command passes shellcheck, no command names a loopback address, workers reach the coordinator by
its address. They cannot run here (no Trino, Ballista or DataFusion distributed binaries); Spark runs in
test_spark_cluster.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from campaign.spec.cluster import node_role, parse_condition
from campaign.spec.load import load_campaign
from campaign.targets.cluster.services import render_instances
from campaign.targets.cluster.state import ClusterRecord, Node
from tests.core.conftest import REPO_ROOT

EXAMPLES = [*sorted((REPO_ROOT / "examples" / "services").glob("*.yaml")), REPO_ROOT / "examples/spark-cluster.yaml"]
SHELLCHECK = shutil.which("shellcheck") or str(Path(__file__).resolve().parents[2] / ".venv/bin/shellcheck")


def aws_like_record(nodes: int) -> ClusterRecord:
    addresses = [f"10.0.1.{10 + i}" for i in range(1, nodes + 1)]
    return ClusterRecord(
        name="bench",
        target="aws",
        repo="/repo",
        campaign_file="c.yaml",
        commit="0" * 40,
        created_at=0.0,
        expires_at=0.0,
        state="up",
        nodes=[Node(i, a, node_role(i), f"/srv/node{i}") for i, a in enumerate(addresses, start=1)],
    )


def test_there_are_examples_for_each_engine():
    assert {p.stem for p in EXAMPLES} == {"trino", "ballista", "datafusion-distributed", "spark-cluster"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_renders_and_lints(path: Path):
    spec = load_campaign(path)
    assert spec.cluster is not None and spec.services
    record = aws_like_record(spec.cluster.nodes)
    instances = render_instances(spec, record)
    coordinator = record.coordinator.address
    for instance in instances:
        node = record.node(instance.node)
        rendered = " ".join([instance.start, *instance.env.values(), instance.http or "", instance.command or ""])
        assert "localhost" not in rendered and "127.0.0.1" not in rendered
        assert "{{" not in rendered and node.address in (instance.http or instance.command or "")
        if instance.expect:
            parse_condition(instance.expect)
        if instance.needs and node.index != 1 and instance.service != "df-coordinator":
            assert (
                coordinator in instance.start
                or coordinator in " ".join(instance.env.values())
                or instance.start.startswith("bash stages/spark/")
            )  # spark: the script reads CAMPAIGN_CLUSTER_COORDINATOR
    script = "#!/usr/bin/env bash\n" + "".join(f"start_{n}() {{\n  {i.start}\n}}\n" for n, i in enumerate(instances))
    checked = subprocess.run([SHELLCHECK, "-s", "bash", "-"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    placed = {(i.service, i.node) for i in instances}
    for service in spec.services:
        expected = {n.index for n in record.nodes if service.on == "all" or service.on == n.role}
        assert {node for name, node in placed if name == service.name} == expected, service.name


def test_the_spark_service_script_passes_shellcheck():
    checked = subprocess.run([SHELLCHECK, str(REPO_ROOT / "stages/spark/service.sh")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
