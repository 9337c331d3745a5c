"""Driving an AWS cluster's nodes through SSM Run Command: the node program's actions (checkout, start, check,
stop, watchdog) and plain commands (exec), on every node in parallel, each answer tied to its node.

SSM returns at most 24,000 characters of a command's output, so the node program answers in one short JSON line
(health bodies are cut at 16,000 characters). A node SSM does not know yet (its agent registers a minute or so
after boot) is retried until REGISTER_WAIT_S has passed.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign.targets.cluster.aws_nodes import Invocation, run_shell
from campaign.targets.cluster.state import ClusterRecord, Node, identity_env

PROGRAM = Path(__file__).with_name("node_program.py")
NODE_ROOT = "/srv/campaign"
REGISTER_WAIT_S = 300.0


@dataclass(frozen=True)
class Answer:
    node: Node
    ok: bool
    value: Any  # the node program's JSON answer (None when it gave none)
    invocation: Invocation

    @property
    def detail(self) -> str:
        text = (self.invocation.stderr or self.invocation.stdout).strip()
        return f"{self.node.label} ({self.node.instance_id}): SSM {self.invocation.status}, exit " + (
            f"{self.invocation.returncode}: {text[-300:] or 'no output'}"
        )


def program_command(action: str, payload: dict[str, Any]) -> str:
    """The shell command that runs the node program's ACTION with PAYLOAD (base64 of JSON) on a node."""
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    return f"python3 - {action} {encoded} <<'CAMPAIGN_NODE_PROGRAM'\n{PROGRAM.read_text()}\nCAMPAIGN_NODE_PROGRAM\n"


def exec_command(record: ClusterRecord, node: Node, command: str) -> str:
    """COMMAND in the node's checkout, with the node's environment."""
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in identity_env(record, node).items())
    root = '"${CAMPAIGN_NODE_ROOT:-' + NODE_ROOT + '}"'
    return f"export CAMPAIGN_NODE_DIR={root}; {exports}cd {root}/checkout && {command}"


def on_nodes(ssm: Any, commands: list[tuple[Node, str]], timeout_s: float, poll_s: float = 2.0) -> list[Answer]:
    """One command per node, all sent at once (threads); each node's answer, in the order given."""

    def one(item: tuple[Node, str]) -> Answer:
        node, command = item
        invocation = _send(ssm, node, command, timeout_s, poll_s)
        return Answer(node, invocation.status == "Success", _last_json(invocation.stdout), invocation)

    if not commands:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(commands))) as pool:
        return list(pool.map(one, commands))


def run_program(
    ssm: Any, action: str, payloads: list[tuple[Node, dict[str, Any]]], timeout_s: float = 600, poll_s: float = 2.0
) -> list[Answer]:
    return on_nodes(ssm, [(node, program_command(action, p)) for node, p in payloads], timeout_s, poll_s)


def _send(ssm: Any, node: Node, command: str, timeout_s: float, poll_s: float) -> Invocation:
    deadline = time.monotonic() + REGISTER_WAIT_S
    while True:
        try:
            return run_shell(ssm, [node.instance_id or ""], command, timeout_s=timeout_s, poll_s=poll_s)[0]
        except ssm.exceptions.InvalidInstanceId as err:
            if time.monotonic() > deadline:
                return Invocation(node.instance_id or "", "NotRegistered", 255, "", f"{err}")
            time.sleep(5.0)


def _last_json(stdout: str) -> Any:
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
