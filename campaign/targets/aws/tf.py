"""The one module that drives Terraform, through python-terraform 0.10.1, with its traps handled.

python-terraform was written for Terraform 0.12; with current Terraform (>= 1.0) it:
  - lets `apply` ask for approval: it sends `-auto-approve=false` unless skip_plan=True, and with
    `-input=false` Terraform then refuses ("Apply requires approval"). We apply a saved plan file,
    which never asks.
  - turns the default `var={}` into an (empty) `-var-file=<tmp>` on every command, which Terraform
    refuses together with a saved plan ("Can't set variables when applying a saved plan"). We pass
    var=None; variables live in terraform.tfvars.json in the working directory, read automatically.
  - sends `-force` to `destroy`, removed in Terraform 0.15. We send `-auto-approve` instead.
  - indexes `['value']` in `output(name)`, but `terraform output -json NAME` prints the bare value.
    We read all outputs as one JSON document and take each `value`.
  - passes a directory as a positional argument, removed in 0.15 (now `-chdir`). We never pass one:
    python-terraform runs in `working_dir`; the only positional argument is a saved plan file.
  - treats `plan -detailed-exitcode`'s exit 2 ("changes present") as a failure. We accept 0 and 2.

Ctrl-C and SIGTERM during a Terraform command do not abandon it half-way: Terraform (in our process
group) gets the terminal's Ctrl-C itself and stops gracefully, saving its state; this process waits
for it and raises KeyboardInterrupt afterwards, so the caller's `finally` can destroy what exists.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from campaign.errors import CampaignError, PreflightRefused

try:
    from python_terraform import IsFlagged, IsNotFlagged, Terraform
except ImportError:  # the `aws` extra is not installed
    raise PreflightRefused("the AWS target needs python-terraform: pip install -e '.[aws]' (make does it)") from None

PLAN_FILE = "run.tfplan"
LOG_FILE = "terraform.log"
PLAN_SUMMARY = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")


class TerraformFailed(CampaignError):
    """A Terraform command exited non-zero (exit 1: an internal error is the closest honest class,
    but the message names the command, its workspace and log, and what to do)."""

    exit_code = 1


@dataclass(frozen=True)
class PlanSummary:
    add: int
    change: int
    destroy: int

    def __str__(self) -> str:
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"


class TerraformRunner:
    """init / plan / apply / output / destroy / state rm in one working directory (one state per run)."""

    def __init__(self, workdir: Path, *, binary: str = "terraform"):
        self.workdir = Path(workdir)
        self.binary = binary
        if shutil.which(binary) is None:
            raise PreflightRefused(
                f"terraform is not on PATH ({binary}); install Terraform >= 1.11 "
                "(https://developer.hashicorp.com/terraform/install) and retry."
            )
        self._tf = Terraform(working_dir=str(self.workdir), terraform_bin_path=binary)

    def init(self, *, backend_config: dict[str, str] | None = None) -> None:
        self._run("init", backend_config=backend_config, reconfigure=IsFlagged, upgrade=IsNotFlagged)

    def plan(self, *, destroy: bool = False) -> PlanSummary:
        out = self._run(
            "plan",
            accept=(0, 2),
            out=PLAN_FILE,
            detailed_exitcode=IsFlagged,
            destroy=IsFlagged if destroy else IsNotFlagged,
        )
        match = PLAN_SUMMARY.search(out)
        return PlanSummary(*map(int, match.groups())) if match else PlanSummary(0, 0, 0)

    def apply(self) -> None:
        """Apply the plan made by plan(): a saved plan never asks for approval."""
        self._run("apply", PLAN_FILE)

    def output(self) -> dict:
        """Every output's value, by name."""
        document = json.loads(self._run("output", json=IsFlagged) or "{}")
        return {name: entry["value"] for name, entry in document.items()}

    def destroy(self) -> None:
        self._run("destroy", force=IsNotFlagged, auto_approve=IsFlagged)

    def state_list(self) -> list[str]:
        return self._run("state list", accept=(0, 1)).split()

    def state_rm(self, addresses: list[str]) -> None:
        if addresses:
            self._run("state rm", *addresses)

    def _run(self, command: str, *args: str, accept: tuple[int, ...] = (0,), **options: Any) -> str:
        """Run one Terraform command, logged to terraform.log; its stdout, or TerraformFailed."""
        options.setdefault("no_color", IsFlagged)
        if command in ("init", "plan", "apply", "destroy"):
            options.setdefault("input", False)
            options.update(var=None, var_file=None, state=None, target=None, parallelism=None)
        else:  # `output` and `state` do not take those flags
            options.update(input=None, var=None, var_file=None, state=None, target=None, parallelism=None)
        with deferred_interrupts() as interrupted, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # python-terraform's log.warn on any exit != 0
            code, out, err = self._tf.cmd(command, *args, **options)
        self._log(command, code, out, err)
        if interrupted.is_set():
            raise KeyboardInterrupt
        if code not in accept:
            raise TerraformFailed(
                f"terraform {command} failed (exit {code}) in {self.workdir}:\n{_last_lines(err or out)}\n"
                f"Full output: {self.workdir / LOG_FILE}."
            )
        return out or ""

    def _log(self, command: str, code: int, out: str | None, err: str | None) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(self.workdir / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(f"\n=== {stamp} terraform {command} -> exit {code}\n{out or ''}{err or ''}")


@contextmanager
def deferred_interrupts() -> Iterator[threading.Event]:
    """While Terraform runs: SIGINT/SIGTERM are noted, not raised; the caller acts after it exits."""
    noted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return

    def note(signum: int, frame: FrameType | None) -> None:
        noted.set()

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield noted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _last_lines(text: str, count: int = 15) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join("  " + line for line in lines[-count:]) or "  (no output)"
