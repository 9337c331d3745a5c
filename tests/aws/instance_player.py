"""Plays the EC2 instances that moto records but cannot boot (a named fake: EC2 booting and cloud-init).

For every instance that appears running in moto with a `campaign:run-id` tag, the player reads the
instance's userdata back from moto (DescribeInstanceAttribute, exactly what Terraform sent), and runs it
with bash on this machine, as cloud-init would. When the script ends (its last act is the power-off)
the player terminates the instance in moto, as `instance_initiated_shutdown_behavior = "terminate"`
does; when the instance is terminated first (terraform destroy, a spot reclaim), the script is killed,
as the machine would be. The userdata must be a local rehearsal (UserdataParams with system_setup off, a
stand-in shutdown command; see rehearsal_params) because this machine is not an AL2023 instance.

    with InstancePlayer(tf_moto, tmp_path / "instances") as player:
        ... campaign run --target aws ...
    player.played   # instance id -> the bash process's exit code (None while it runs)
"""

from __future__ import annotations

import base64
import getpass
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

from campaign.targets.aws.userdata import UserdataParams

RUN_TAG = "campaign:run-id"
VENV_BIN = Path(sys.executable).parent  # the aws CLI the userdata calls


def rehearsal_params(params: UserdataParams, root: Path) -> UserdataParams:
    """The instance's userdata parameters turned into a local rehearsal under root (see the docstring)."""
    shutdown = root / "shutdown-stand-in"
    if not shutdown.exists():
        root.mkdir(parents=True, exist_ok=True)
        shutdown.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {root / "shutdown.calls"}\n')
        shutdown.chmod(0o755)
    return replace(
        params,
        bench_user=getpass.getuser(),
        work_root=str(root / params.run_id),
        install_spec="",
        campaign_command=(sys.executable, "-m", "campaign.cli"),
        system_setup=False,
        shutdown_command=str(shutdown),
        run_json_wait_s=120,
    )


class InstancePlayer:
    def __init__(self, harness, root: Path, *, interval_s: float = 0.3, boot_s: float = 12):
        self.ec2 = harness.client("ec2")
        # A real instance reaches cloud-init well after EC2 reports it running (and Terraform polls every
        # 10 s): a toy campaign played at once could end before `terraform apply` saw the instance run.
        self.boot_s = boot_s
        self._first_seen: dict[str, float] = {}
        self.root = root
        self.interval_s = interval_s
        self.processes: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="instance-player", daemon=True)

    @property
    def played(self) -> dict[str, int | None]:
        return {instance_id: process.poll() for instance_id, process in list(self.processes.items())}

    def wait_until_powered_off(self, timeout_s: float = 60) -> dict[str, int | None]:
        """Every played instance's script has ended and moto shows the instance terminated."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = self._instance_states()
            if all(code is not None and states.get(i) == "terminated" for i, code in self.played.items()):
                return self.played
            time.sleep(self.interval_s)
        raise AssertionError(f"the played instances did not power off within {timeout_s}s: {self.played}")

    def __enter__(self) -> InstancePlayer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            states = self._instance_states()
            for instance_id, state in states.items():
                if state == "running" and instance_id not in self.processes and self._booted(instance_id):
                    self.processes[instance_id] = self._boot(instance_id)
            for instance_id, process in self.processes.items():
                if process.poll() is not None and states.get(instance_id) == "running":
                    self.ec2.terminate_instances(InstanceIds=[instance_id])  # powered off: terminated
                elif process.poll() is None and states.get(instance_id, "terminated") != "running":
                    os.killpg(process.pid, signal.SIGKILL)  # the machine is gone, and its processes with it

    def _booted(self, instance_id: str) -> bool:
        import time

        first_seen = self._first_seen.setdefault(instance_id, time.monotonic())
        return time.monotonic() - first_seen >= self.boot_s

    def _instance_states(self) -> dict[str, str]:
        reservations = self.ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": [RUN_TAG]}])
        return {i["InstanceId"]: i["State"]["Name"] for r in reservations["Reservations"] for i in r["Instances"]}

    def _boot(self, instance_id: str) -> subprocess.Popen:
        answer = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        script = self.root / f"{instance_id}.userdata.sh"
        script.write_bytes(base64.b64decode(answer["UserData"]["Value"]))
        env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        with open(self.root / f"{instance_id}.console.log", "wb") as console:
            return subprocess.Popen(
                ["bash", str(script)],
                cwd=self.root,
                env=env,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
