"""Running one stage command: own process group, full log, exit code honoured, timeout enforced.

The child writes straight into its log file (never through a pipe that could be truncated).
Ctrl-C reaches only this process (the child has its own session); we then stop the child's
whole process group, so nothing it started keeps running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

GRACE_S = 10.0  # between SIGTERM and SIGKILL of a stage's process group


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None  # None when it had to be killed
    timed_out: bool
    duration_s: float


def run_logged(command: str, *, cwd: Path, env: dict[str, str], log_path: Path,
               timeout_s: float | None) -> ProcessResult:
    """Run command under bash (pipefail on), all output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "ab", buffering=0) as log:
        process = subprocess.Popen(
            ["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            exit_code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_group(process)
            _note(log, f"campaign: stopped after the stage timeout of {timeout_s:.0f}s")
            return ProcessResult(None, True, time.monotonic() - started)
        except BaseException:  # Ctrl-C, SIGTERM: take the whole group down with us
            stop_group(process)
            _note(log, "campaign: interrupted; the stage's process group was stopped")
            raise
    return ProcessResult(exit_code, False, time.monotonic() - started)


def stop_group(process: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after grace_s."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)  # also reaps grandchildren that ignored SIGTERM
    process.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _note(log, message: str) -> None:
    log.write(f"\n{message}\n".encode())
