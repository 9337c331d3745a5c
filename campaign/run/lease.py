"""The lease: one agent per run id.

Created with a conditional write (S3 If-None-Match: *, an exclusive create locally) and renewed by
heartbeats (If-Match on the version we wrote), so a second agent is refused and `status` can tell
"running" from "dead since T". A lease whose heartbeat is older than STALE_AFTER_S may be taken
over with --take-over.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from campaign.errors import Conflict, PreflightRefused, StoreError
from campaign.run.keys import RunKeys
from campaign.store import Store
from campaign.system.clock import now_iso
from campaign.system.process import process_alive

HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0


@dataclass(frozen=True)
class LeaseInfo:
    agent: str  # host:pid:token
    host: str
    pid: int
    acquired_at: str
    heartbeat_at: str
    heartbeat_epoch: float

    def age_s(self, now: float | None = None) -> float:
        return (now or time.time()) - self.heartbeat_epoch

    def describe(self) -> str:
        return f"agent pid {self.pid} on {self.host}, last heartbeat {self.age_s():.0f}s ago ({self.heartbeat_at})"


def read_lease(store: Store, run_id: str) -> tuple[LeaseInfo, str] | None:
    found = store.read_versioned(lease_key(run_id))
    if found is None:
        return None
    data, tag = found
    return LeaseInfo(**json.loads(data)), tag


def holder_is_dead_here(info: LeaseInfo) -> bool:
    """The holder ran on this machine and its process is gone (or is no longer a campaign process)."""
    if info.host != socket.gethostname():
        return False
    try:
        command = Path(f"/proc/{info.pid}/cmdline").read_bytes()
    except OSError:
        return True
    return not process_alive(info.pid) or b"campaign" not in command


def lease_key(run_id: str) -> str:
    return RunKeys(run_id).lease


class Lease:
    """Held by this process for one run; heartbeats from a daemon thread until released."""

    def __init__(
        self, store: Store, run_id: str, *, heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S
    ):
        self.store, self.run_id = store, run_id
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.agent = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.acquired_at = now_iso()
        self.tag: str | None = None
        self.lost: str | None = None  # why, once another agent has taken the lease
        self.beat_error: str | None = None  # the last heartbeat's store error, while it lasts
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def acquire(self, *, take_over: bool = False) -> None:
        """Take the lease or raise PreflightRefused saying who holds it and what to do."""
        try:
            self.tag = self.store.put_conditional(self._payload(), lease_key(self.run_id), expect=None)
            return
        except Conflict:
            pass
        held = read_lease(self.store, self.run_id)
        if held is None:  # released between our two calls: try once more
            self.tag = self.store.put_conditional(self._payload(), lease_key(self.run_id), expect=None)
            return
        info, tag = held
        self._refuse_unless_stale(info, take_over)
        try:
            self.tag = self.store.put_conditional(self._payload(), lease_key(self.run_id), expect=tag)
        except Conflict:
            raise PreflightRefused(
                f"run {self.run_id}: another agent took the lease at the same moment; `campaign status` shows which."
            ) from None

    def _refuse_unless_stale(self, info: LeaseInfo, take_over: bool) -> None:
        if holder_is_dead_here(info):
            return  # its process is gone from this very machine: nothing can be running the run
        age = info.age_s()
        if not take_over:
            raise PreflightRefused(
                f"run {self.run_id} is held by another agent ({info.describe()}). Only one agent may run it. "
                f"If that agent is dead, resume with --take-over once its heartbeat is older than "
                f"{self.stale_after_s:.0f}s."
            )
        if age < self.stale_after_s:
            raise PreflightRefused(
                f"run {self.run_id}: --take-over refused, the lease is alive ({info.describe()}). "
                f"A lease can be taken over once its heartbeat is older than {self.stale_after_s:.0f}s; "
                "stop that agent first, or wait."
            )

    def start_heartbeats(self) -> None:
        threading.Thread(target=self._beat_until_stopped, name="lease-heartbeat", daemon=True).start()

    def beat(self) -> None:
        with self._lock:
            if self.lost:
                return
            try:
                self.tag = self.store.put_conditional(self._payload(), lease_key(self.run_id), expect=self.tag)
            except Conflict:
                self.lost = "another agent took over this run's lease"

    def release(self) -> None:
        """Stop heartbeats and delete the lease, unless another agent holds it now."""
        self._stop.set()
        with self._lock:
            current = self.store.read_versioned(lease_key(self.run_id))
            if current is not None and current[1] == self.tag and not self.lost:
                self.store.delete(lease_key(self.run_id))

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.beat()
                self.beat_error = None
            except StoreError as error:  # a store outage: the next beat retries, the agent reports it
                self.beat_error = str(error)

    def _payload(self) -> bytes:
        host, pid, _ = self.agent.split(":")
        info = LeaseInfo(
            agent=self.agent,
            host=host,
            pid=int(pid),
            acquired_at=self.acquired_at,
            heartbeat_at=now_iso(),
            heartbeat_epoch=time.time(),
        )
        return json.dumps(asdict(info), sort_keys=True).encode()
