"""`campaign cluster forward SERVICE` and `campaign cluster login [NODE]` on an AWS cluster: SSM sessions through
the aws CLI (`aws ssm start-session`), which needs AWS's session-manager-plugin; no SSH, no inbound port.

    forward: --document-name AWS-StartPortForwardingSession --parameters {"portNumber":[P],"localPortNumber":[L]}
    login:   a plain shell session on the node
"""

from __future__ import annotations

import json
import shutil
import subprocess

from campaign.errors import InputError, PreflightRefused
from campaign.targets.cluster.state import ClusterRecord, Instance, Node
from campaign.targets.cluster_aws import provision

PLUGIN_INSTALL = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"
)
CLI_INSTALL = "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"


def require_tools(record: ClusterRecord) -> str:
    """The aws CLI's path, once the session-manager plugin it runs sessions with is on PATH too."""
    if shutil.which("session-manager-plugin") is None:
        raise PreflightRefused(
            f"cluster {record.name}: an SSM session needs AWS's session-manager-plugin, which is not on PATH. "
            f"Install it ({PLUGIN_INSTALL}; e.g. Debian/Ubuntu: curl -fsSLo /tmp/smp.deb https://s3.amazonaws.com/"
            "session-manager-downloads/plugin/latest/ubuntu_64bit/session-manager-plugin.deb && sudo dpkg -i "
            "/tmp/smp.deb; macOS: brew install --cask session-manager-plugin), check with "
            "`session-manager-plugin --version`, then retry."
        )
    aws = shutil.which("aws")
    if aws is None:
        raise PreflightRefused(f"cluster {record.name}: the aws CLI is not on PATH; install it ({CLI_INSTALL}).")
    return aws


def _serving(record: ClusterRecord, service: str, node: int | None) -> Instance:
    found = [i for i in record.instances if i.service == service and (node is None or i.node == node)]
    if not found:
        names = ", ".join(sorted({i.service for i in record.instances})) or "none"
        where = f" on node {node}" if node is not None else ""
        raise InputError(f"cluster {record.name}: no service {service!r}{where} (services: {names}).")
    return found[0]


def forward_argv(
    record: ClusterRecord, aws: str, service: str, local_port: int | None, port: int | None, node: int | None
) -> list[str]:
    """`aws ssm start-session` forwarding localhost:LOCAL to the service's port on its node."""
    instance = _serving(record, service, node)
    if port is None and not instance.ports:
        raise InputError(f"cluster {record.name}: {service} declares no ports; name one with --port P.")
    remote = port if port is not None else instance.ports[0]
    parameters = json.dumps({"portNumber": [str(remote)], "localPortNumber": [str(local_port or remote)]})
    return [
        aws,
        "ssm",
        "start-session",
        "--target",
        _instance_id(record, record.node(instance.node)),
        "--document-name",
        "AWS-StartPortForwardingSession",
        "--parameters",
        parameters,
        "--region",
        record.region or "",
    ]


def login_argv(record: ClusterRecord, aws: str, node: str | None) -> list[str]:
    """`aws ssm start-session` to a shell on the node (the coordinator unless NODE is given)."""
    chosen = record.coordinator
    if node is not None:
        if not node.isdigit() or not 1 <= int(node) <= len(record.nodes):
            raise InputError(f"cluster {record.name}: node {node!r}: a node number from 1 to {len(record.nodes)}.")
        chosen = record.node(int(node))
    return [aws, "ssm", "start-session", "--target", _instance_id(record, chosen), "--region", record.region or ""]


def _instance_id(record: ClusterRecord, node: Node) -> str:
    if record.state == "stopped":
        raise PreflightRefused(
            f"cluster {record.name} is stopped: `campaign cluster start --name {record.name}` first."
        )
    if not node.instance_id:
        raise PreflightRefused(
            f"cluster {record.name}: {node.label} has no instance yet; `campaign cluster up --resume` finishes it."
        )
    return node.instance_id


def start_session(record: ClusterRecord, argv: list[str]) -> int:
    """Run the session in this terminal, with the configured credentials; its exit code."""
    _, auth = provision.settings_for(record)
    auth.activate()
    return subprocess.run(argv).returncode
