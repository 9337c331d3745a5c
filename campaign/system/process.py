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


def reap_group(pgid: int) -> None:
    """SIGKILL a leftover process group of a dead agent's stage and wait (up to 5 s) until it is gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not process_alive(pgid):
            return
        time.sleep(0.05)


def process_alive(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent to collect it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def reap_orphans(run_id: str) -> list[int]:
    """Stop every stage process group on this machine of run_id (CAMPAIGN_RUN_ID and CAMPAIGN_STAGE_RUN set).

    After a kill -9 of the agent its stage keeps running (it has its own session) and would go on
    appending to the results a resumed stage is about to continue. Returns the groups stopped.
    """
    marker = f"CAMPAIGN_RUN_ID={run_id}".encode()
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            is_stage = marker in environ and any(v.startswith(b"CAMPAIGN_STAGE_RUN=") for v in environ)
            if is_stage and process_alive(int(entry.name)):
                groups.add(os.getpgid(int(entry.name)))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    groups.discard(os.getpgid(0))
    for pgid in sorted(groups):
        reap_group(pgid)
    return sorted(groups)
