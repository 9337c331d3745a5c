"""Running one stage command: own process group, full log, exit code honoured, timeout enforced.

The child writes straight into its log file (never through a pipe that could be truncated).
Ctrl-C reaches only this process (the child has its own session); we then stop the child's
whole process group, so nothing it started keeps running. The same happens when the main process exits
while children it started run on, and, through a watchdog process, when this process is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GRACE_S = 10.0  # between SIGTERM and SIGKILL of a stage's process group


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None  # None when it had to be killed
    timed_out: bool
    duration_s: float


def run_logged(
    command: str, *, cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float | None
) -> ProcessResult:
    """Run command under bash (pipefail on), all output appended to log_path.

    When the main process exits, whatever it left running in its process group is stopped (and the log
    says so) before anyone reads the outputs. A watchdog stops the group if this process dies first.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "ab", buffering=0) as log:
        process = subprocess.Popen(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        watchdog = start_watchdog(process.pid)
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
        finally:
            _stop_watchdog(watchdog)
        _stop_leftovers(process.pid, log)
    return ProcessResult(exit_code, False, time.monotonic() - started)


def _stop_leftovers(pgid: int, log: BinaryIO) -> None:
    """Stop what the stage's main process left running in its group, and say so in its log."""
    left = live_members(pgid)
    if not left:
        return
    _note(
        log,
        f"campaign: the stage's main process exited, but {len(left)} process(es) it started were still "
        f"running (pid {', '.join(map(str, left))}); stopping them before its outputs are checked",
    )
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while live_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if live_members(pgid):
        _signal_group(pgid, signal.SIGKILL)
        _note(log, f"campaign: they ignored SIGTERM for {GRACE_S:.0f}s and were killed (SIGKILL)")


def live_members(pgid: int) -> list[int]:
    """Pids of the running (not zombie) processes in process group pgid, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def start_watchdog(pgid: int) -> subprocess.Popen:
    """A small process, in a session of its own, that stops group pgid if this process dies (kill -9)."""
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(pgid), str(GRACE_S)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop_watchdog(watchdog: subprocess.Popen) -> None:
    watchdog.terminate()
    watchdog.wait()


# Polls its parent (the agent); when the parent is gone, stops the stage's process group and exits.
_WATCHDOG = """
import os, signal, sys, time
parent, group, grace = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def signal_group(sig):
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False
while os.getppid() == parent:
    time.sleep(0.2)
if signal_group(signal.SIGTERM):
    time.sleep(grace)
    signal_group(signal.SIGKILL)
"""


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


def _note(log: BinaryIO, message: str) -> None:
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
