"""Plays what moto cannot do for an AWS cluster: SSM Run Command executing on the nodes (a named fake).

moto records every send-command and answers get-command-invocation with a canned invocation (status Success,
empty output) without running anything. `PlayedSsm` wraps a real boto3 SSM client of moto's server: each
send-command still goes to moto (so its request is checked and recorded), then the command is run with bash on
this machine as the node would run it, in the node's own folder (CAMPAIGN_NODE_ROOT=<root>/<instance id>), and
get-command-invocation answers with what it really printed and its exit code. A node that moto does not show
running gets no play (its invocation is Undeliverable), and, as a machine that stops or is terminated, loses its
processes: `PlayedSsm.power()` (a thread while in `with`) kills the process groups of the services started on
it. `shutdown` is a stand-in on the played PATH that records its arguments in <node>/shutdown.calls.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


class PlayedSsm:
    def __init__(self, real_ssm: Any, ec2: Any, root: Path):
        self._real, self.ec2, self.root = real_ssm, ec2, root
        self._played: dict[tuple[str, str], dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ssm-player", daemon=True)
        bin_dir = root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        stand_in = bin_dir / "shutdown"
        stand_in.write_text('#!/bin/bash\nprintf "%s\\n" "$*" >> "$CAMPAIGN_NODE_ROOT/shutdown.calls"\n')
        stand_in.chmod(0o755)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)  # exceptions, list_commands, …: moto's own

    def send_command(self, **request: Any) -> dict[str, Any]:
        sent = self._real.send_command(**request)
        self.sent.append(request)
        command_id = sent["Command"]["CommandId"]
        states = self.states()
        for instance_id in request["InstanceIds"]:
            if states.get(instance_id) == "running":
                played = self._play(instance_id, request["Parameters"]["commands"][0], request["TimeoutSeconds"])
            else:
                played = {"Status": "Undeliverable", "ResponseCode": -1, "StandardOutputContent": ""}
            self._played[(command_id, instance_id)] = {"StandardErrorContent": "", **played}
        return sent

    def get_command_invocation(self, CommandId: str, InstanceId: str) -> dict[str, Any]:
        played = self._played.get((CommandId, InstanceId))
        if played is None:
            return self._real.get_command_invocation(CommandId=CommandId, InstanceId=InstanceId)
        return {"CommandId": CommandId, "InstanceId": InstanceId, **played}

    def node_root(self, instance_id: str) -> Path:
        return self.root / instance_id

    def _play(self, instance_id: str, command: str, timeout_s: int) -> dict[str, Any]:
        node = self.node_root(instance_id)
        node.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CAMPAIGN_NODE_ROOT": str(node),
            "PATH": f"{self.root / 'bin'}:{VENV_BIN}:{os.environ['PATH']}",
        }
        done = subprocess.run(
            ["bash", "-c", command], cwd=node, env=env, capture_output=True, text=True, timeout=timeout_s
        )
        return {
            "Status": "Success" if done.returncode == 0 else "Failed",
            "ResponseCode": done.returncode,
            "StandardOutputContent": done.stdout[-24000:],
            "StandardErrorContent": done.stderr[-8000:],
        }

    def states(self) -> dict[str, str]:
        answer = self.ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["campaign:cluster"]}])
        return {i["InstanceId"]: i["State"]["Name"] for r in answer["Reservations"] for i in r["Instances"]}

    def power(self) -> None:
        """A node that is not running has no processes: kill the services started on it."""
        states = self.states()
        for node in self.root.glob("i-*"):
            if states.get(node.name, "terminated") != "running":
                self._kill(node)

    def _kill(self, node: Path) -> None:
        for pid_file in node.glob("run/*.pid"):
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                continue  # already gone: nothing to power off

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            self.power()

    def __enter__(self) -> PlayedSsm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for node in self.root.glob("i-*"):
            self._kill(node)
