"""`campaign cluster forward SERVICE` and `campaign cluster login [NODE]` on an AWS cluster.

Named fakes: SSM sessions cannot run here (moto has no session endpoint, and the session-manager-plugin talks to
AWS over a WebSocket), so `aws` on PATH is a fake that records the argv it was given and exits with a chosen code,
and `session-manager-plugin` is a stand-in script: the tests check what campaign asks the aws CLI to do, and that
a missing plugin stops it with the way to install it.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.targets.cluster.state import ClusterRecord, Instance, Node, write_record

IDS = ["i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"]


def aws_record(repo: Path, state: str = "up") -> ClusterRecord:
    nodes = [
        Node(i, f"10.0.0.{10 + i}", "coordinator" if i == 1 else "workers", "/srv/campaign", IDS[i - 1]) for i in (1, 2)
    ]
    master = Instance("master", 1, "run-master", {}, [7077, 8080], [], None, "true", 200, None, 60.0)
    worker = Instance("worker", 2, "run-worker", {}, [], ["master"], None, "true", 200, None, 60.0)
    return ClusterRecord(
        "spark", "aws", str(repo), "c.yaml", "0" * 40, 0.0, 1e12, state, nodes, [master, worker], region="eu-west-1"
    )


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A state dir holding an AWS cluster's record, and a PATH of fakes only: `aws` records its argv."""
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    bin_dir.mkdir()
    write_record(state, aws_record(tmp_path))
    calls = tmp_path / "aws.argv"
    fake_aws = bin_dir / "aws"
    fake_aws.write_text(
        f"#!{sys.executable}\n# FAKE aws CLI (SSM sessions cannot run here): records its argv\nimport json, os, sys\n"
        f"open({str(calls)!r}, 'w').write(json.dumps(sys.argv[1:]))\nsys.exit(int(os.environ.get('FAKE_AWS_EXIT', '0')))\n"
    )
    fake_aws.chmod(0o755)
    (bin_dir / "git").symlink_to(shutil.which("git") or "git")  # campaign finds the repository with git
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(tmp_path)
    return {"state": state, "bin": bin_dir, "calls": calls}


def with_plugin(tools: dict[str, Path]) -> None:
    plugin = tools["bin"] / "session-manager-plugin"
    plugin.write_text(
        "#!/bin/sh\n# STAND-IN for AWS's session-manager-plugin (never run by campaign itself)\necho 1.2\n"
    )
    plugin.chmod(0o755)


def cluster(tools: dict[str, Path], *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["cluster", args[0], "--state-dir", str(tools["state"]), *args[1:]])
    return code, out.getvalue()


def test_without_the_plugin_forward_and_login_stop_and_say_how_to_install_it(tools):
    for command in (["forward", "master"], ["login"]):
        code, output = cluster(tools, *command)
        assert code == 3, output
        assert "cluster spark: an SSM session needs AWS's session-manager-plugin, which is not on PATH" in output
        assert "session-manager-working-with-install-plugin.html" in output
    assert not tools["calls"].exists()  # the aws CLI was never started


def test_forward_asks_the_aws_cli_for_a_port_forwarding_session_to_the_services_node(tools):
    with_plugin(tools)
    code, output = cluster(tools, "forward", "master", "--local-port", "18080")
    assert code == 0, output
    assert json.loads(tools["calls"].read_text()) == [
        "ssm",
        "start-session",
        "--target",
        IDS[0],
        "--document-name",
        "AWS-StartPortForwardingSession",
        "--parameters",
        '{"portNumber": ["7077"], "localPortNumber": ["18080"]}',
        "--region",
        "eu-west-1",
    ]
    code, _ = cluster(tools, "forward", "master", "--port", "8080")
    assert code == 0
    assert '{"portNumber": ["8080"], "localPortNumber": ["8080"]}' in json.loads(tools["calls"].read_text())


def test_login_opens_a_session_on_the_node_asked_for_and_passes_its_exit_code_on(tools, monkeypatch):
    with_plugin(tools)
    code, _ = cluster(tools, "login")
    assert code == 0
    assert json.loads(tools["calls"].read_text()) == [
        "ssm",
        "start-session",
        "--target",
        IDS[0],
        "--region",
        "eu-west-1",
    ]
    monkeypatch.setenv("FAKE_AWS_EXIT", "255")
    code, _ = cluster(tools, "login", "2")
    assert code == 255
    assert json.loads(tools["calls"].read_text())[3] == IDS[1]


def test_bad_service_node_or_a_stopped_cluster_are_refused_with_what_to_do(tools):
    with_plugin(tools)
    code, output = cluster(tools, "forward", "nope")
    assert code == 2 and "no service 'nope' (services: master, worker)" in output
    code, output = cluster(tools, "forward", "worker")
    assert code == 2 and "worker declares no ports; name one with --port P" in output
    code, output = cluster(tools, "login", "3")
    assert code == 2 and "a node number from 1 to 2" in output
    write_record(tools["state"], aws_record(tools["state"].parent, state="stopped"))
    code, output = cluster(tools, "login")
    assert code == 3 and "campaign cluster start --name spark" in output
    assert not tools["calls"].exists()


def test_a_local_cluster_needs_no_session(tools):
    record = aws_record(tools["state"].parent)
    record.target = "local"
    write_record(tools["state"], record)
    code, output = cluster(tools, "forward", "master")
    assert code == 2, output
    assert "cluster spark is a local cluster: no SSM session needed" in output
