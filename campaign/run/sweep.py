"""sweep.json: one campaign run once per instance type, one type after another, under one sweep id.

    sweeps/<sweep-id>/sweep.json      the sweep record, rewritten after every state change

The record is mirrored on this machine (`<state dir>/sweeps/<sweep-id>/sweep.json`), written there first,
so `campaign status/resume SWEEP` find it without --store, also when the store could not be written yet
(the bucket the first run creates). Each member is one instance type (× nodes): its run id, state, when it
started and ended, the hourly price used for its cost, and why it failed; an interrupted member's earlier
run ids are kept as `superseded` when it runs again.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign.errors import InputError, NotInStore, StoreError
from campaign.run.record import damaged_object, new_run_id
from campaign.store import Store

SWEEPS_PREFIX = "sweeps/"
SWEEP_PREFIX = "sweep-"
SWEEP_ID = re.compile(r"^sweep-[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")
SWEEP_FILE = "sweep.json"

PENDING, RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "pending", "running", "succeeded", "failed", "interrupted"
STOPPED, DEAD = "stopped", "dead"
FINISHED = (SUCCEEDED, FAILED)  # a member in one of these states is never run again


def new_sweep_id(commit: str | None) -> str:
    """Sortable by time, told apart from run ids by its prefix: sweep-20261122T181500Z-1a2b3c4-k3f9."""
    return SWEEP_PREFIX + new_run_id(commit)


def is_sweep_id(text: str) -> bool:
    return text.strip().startswith(SWEEP_PREFIX)


def check_sweep_id(sweep_id: str) -> str:
    if not SWEEP_ID.match(sweep_id or "") or ".." in sweep_id:
        raise InputError(
            f"{sweep_id!r} is not a sweep id. A sweep id looks like sweep-20261122T181500Z-1a2b3c4-k3f9: "
            "the first line `campaign run --instance-types …` printed."
        )
    return sweep_id


@dataclass(frozen=True)
class SweepKeys:
    """The store keys of a sweep, in one place."""

    sweep_id: str

    def __post_init__(self) -> None:
        check_sweep_id(self.sweep_id)

    @property
    def root(self) -> str:
        return f"{SWEEPS_PREFIX}{self.sweep_id}"

    @property
    def record(self) -> str:
        return f"{self.root}/{SWEEP_FILE}"


def mirror_path(state_dir: Path, sweep_id: str) -> Path:
    return state_dir / "sweeps" / check_sweep_id(sweep_id) / SWEEP_FILE


@dataclass
class Member:
    """One instance type of the sweep (× nodes) and the run that measured it."""

    instance_type: str
    nodes: int = 1
    state: str = PENDING
    run_id: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    usd_per_hour: float | None = None  # the price of one node used for its cost; None: unknown
    price_source: str = ""
    reason: str = ""
    superseded: list[str] = field(default_factory=list)  # earlier runs of this type, interrupted
    cluster: str | None = None  # a sweep of clusters: the cluster its run brought up (and down)

    def duration_s(self, now: datetime | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = datetime.fromisoformat(self.ended_at) if self.ended_at else (now or datetime.now(UTC))
        return max(0.0, (end - datetime.fromisoformat(self.started_at)).total_seconds())

    def cost_usd(self, now: datetime | None = None) -> float | None:
        """What the member's machines cost so far: hours × hourly price × nodes; None without a price."""
        seconds = self.duration_s(now)
        if seconds is None or self.usd_per_hour is None:
            return None
        return seconds / 3600 * self.usd_per_hour * self.nodes


@dataclass
class SweepRecord:
    sweep_id: str
    campaign_file: str  # as given (relative to the repository root, or absolute)
    selection: str | None
    target: str
    store: str
    commit: str | None
    created_at: str
    members: list[Member]
    state: str = RUNNING
    stop_on_failure: bool = False
    keep_going: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # the target's own (region, keep, max_cost)
    vars: dict[str, Any] = field(default_factory=dict)  # --var overrides, as given
    driver: dict[str, Any] = field(default_factory=dict)  # host and pid of the `campaign` process driving it
    revision: int = 0

    @property
    def keys(self) -> SweepKeys:
        return SweepKeys(self.sweep_id)

    def member(self, instance_type: str) -> Member:
        return next(m for m in self.members if m.instance_type == instance_type)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> SweepRecord:
        """Parse and check the shape; ValueError/TypeError say what is wrong."""
        document: Any = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError(f"a JSON {type(document).__name__}, not an object")
        known = {f.name: f for f in fields(cls)}
        missing = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in missing if name not in document]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        values = {name: value for name, value in document.items() if name in known}
        member_fields = {f.name for f in fields(Member)}
        values["members"] = [Member(**{k: v for k, v in m.items() if k in member_fields}) for m in values["members"]]
        return cls(**values)


def this_driver() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def driver_is_gone(record: SweepRecord) -> bool:
    """The sweep says running, but the `campaign` process that drove it on this machine is gone (kill -9)."""
    host, pid = record.driver.get("host"), record.driver.get("pid")
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def sweep_state(record: SweepRecord) -> str:
    """The sweep's state as `status` shows it: `dead` when it says running but its driver is gone."""
    if record.state == RUNNING and driver_is_gone(record):
        return DEAD
    return record.state


class SweepBook:
    """Writes the sweep record after every change: the local mirror first, then the store.

    A store that cannot be written yet (the bucket the first run creates) is said once and written at the
    next change; the mirror always holds the latest revision."""

    def __init__(self, record: SweepRecord, store: Store, state_dir: Path, out: Any = None) -> None:
        self.record, self.store, self.mirror = record, store, mirror_path(state_dir, record.sweep_id)
        self.out = out or (lambda line: None)
        self.store_pending: str | None = None

    def save(self) -> None:
        self.record.revision += 1
        data = self.record.to_bytes()
        self.mirror.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.mirror.with_suffix(".tmp")
        scratch.write_bytes(data)
        os.replace(scratch, self.mirror)
        try:
            self.store.put_bytes(data, self.record.keys.record)
        except StoreError as err:
            if self.store_pending is None:
                self.out(
                    f"sweep {self.record.sweep_id}: the store cannot be written yet ({str(err).splitlines()[0]}); "
                    f"the record is kept at {self.mirror} and written to the store at its next change"
                )
            self.store_pending = str(err)
            return
        self.store_pending = None


def read_sweep(store: Store, state_dir: Path, sweep_id: str) -> SweepRecord:
    """The newest revision of the sweep's record, from the store or this machine's mirror."""
    found = [r for r in (_from_store(store, sweep_id), _from_mirror(state_dir, sweep_id)) if r is not None]
    if not found:
        raise InputError(
            f"sweep {sweep_id} is neither in the store {store.where(SWEEPS_PREFIX)} nor on this machine "
            f"({state_dir / 'sweeps'}). Pass the store the sweep used (--store s3://BUCKET/PREFIX)."
        )
    return max(found, key=lambda record: record.revision)


def _parse(data: bytes, where: str, sweep_id: str) -> SweepRecord:
    try:
        record = SweepRecord.from_bytes(data)
    except (ValueError, TypeError, KeyError) as err:
        raise damaged_object(where, f"not the sweep.json campaign writes ({err})") from None
    if record.sweep_id != sweep_id:
        raise damaged_object(where, f"it describes sweep {record.sweep_id!r}, not {sweep_id!r}")
    return record


def _from_store(store: Store, sweep_id: str) -> SweepRecord | None:
    key = SweepKeys(sweep_id).record
    try:
        data = store.get_bytes(key)
    except NotInStore:
        return None
    return _parse(data, store.where(key), sweep_id)


def _from_mirror(state_dir: Path, sweep_id: str) -> SweepRecord | None:
    path = mirror_path(state_dir, sweep_id)
    if not path.is_file():
        return None
    return _parse(path.read_bytes(), str(path), sweep_id)


def sweep_ids(store: Store, state_dir: Path) -> list[str]:
    """Every sweep in the store or mirrored here, newest first."""
    here = state_dir / "sweeps"
    local = {p.name for p in here.iterdir() if (p / SWEEP_FILE).is_file()} if here.is_dir() else set()
    return sorted(local | set(store.list_children(SWEEPS_PREFIX)), reverse=True)
