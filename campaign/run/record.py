"""run.json: what a run is, written before its first stage; the agent reads it back.

The record's shape is checked when it is read: a damaged or foreign run.json is a clear error
naming the object (exit 5), never an AttributeError later.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from campaign.errors import InputError, NotInStore, StoreError
from campaign.planning.plan import Plan
from campaign.run.keys import RUNS_PREFIX, RunKeys
from campaign.store import Store
from campaign.system.clock import compact_stamp, now_iso

_TEXT_FIELDS = ("run_id", "campaign", "campaign_file", "campaign_digest", "selection", "target", "store")


def new_run_id(commit: str | None) -> str:
    """Sortable by time: 20261122T181500Z-1a2b3c4-k3f9."""
    return f"{compact_stamp()}-{(commit or 'nocommit')[:7]}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    campaign: str
    campaign_file: str  # relative to the repository root
    campaign_digest: str
    commit: str | None
    dirty: bool
    selection: str
    target: str
    store: str
    created_at: str
    keep_going: bool = False
    sync_interval_s: float = 2.0  # how often incremental results are uploaded while they grow
    vars: dict[str, Any] = field(default_factory=dict)  # the campaign's vars as the run uses them (--var applied)
    host: dict[str, Any] = field(default_factory=dict)  # the executing machine's fingerprint (system.host)
    sides: dict[str, str] = field(default_factory=dict)  # `campaign ab`: side name -> commit
    order_seed: int | None = None  # `campaign ab`: the seed of the rounds' random order

    @classmethod
    def new(
        cls,
        plan: Plan,
        root: Path,
        *,
        store: str,
        target: str,
        keep_going: bool = False,
        sync_interval_s: float = 2.0,
        host: dict[str, Any] | None = None,
    ) -> RunRecord:
        """The record of a new run of plan (planned in the repository at root)."""
        return cls(
            run_id=new_run_id(plan.commit),
            campaign=plan.spec.name,
            campaign_file=plan.spec.path.relative_to(root).as_posix(),
            campaign_digest=plan.spec.digest,
            commit=plan.commit,
            dirty=plan.dirty,
            selection=plan.selection_text,
            target=target,
            store=store,
            created_at=now_iso(),
            keep_going=keep_going,
            sync_interval_s=sync_interval_s,
            vars=dict(plan.spec.vars),
            host=dict(host or {}),
        )

    @property
    def keys(self) -> RunKeys:
        return RunKeys(self.run_id)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> RunRecord:
        """Parse and check the shape; ValueError says what is wrong."""
        document: Any = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError(f"a JSON {type(document).__name__}, not an object")
        known = {f.name: f for f in fields(cls)}
        required = [name for name, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in document]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        return cls(**{name: value for name, value in document.items() if name in known})


def read_record(store: Store, run_id: str) -> RunRecord:
    """The run's run.json; InputError when the run is not in the store, StoreError when run.json is damaged."""
    key = RunKeys(run_id).record
    try:
        data = store.get_bytes(key)
    except NotInStore:
        raise InputError(
            f"run {run_id} is not in the store {store.where(RUNS_PREFIX)}. "
            "`campaign runs --store …` lists the runs there; pass the store the run used."
        ) from None
    try:
        record = RunRecord.from_bytes(data)
    except (ValueError, TypeError) as err:
        raise damaged_object(store.where(key), f"not the run.json campaign writes ({_first_line(err)})") from None
    problem = _record_problem(record, run_id)
    if problem:
        raise damaged_object(store.where(key), problem)
    return record


def _record_problem(record: RunRecord, run_id: str) -> str | None:
    wrong = [name for name in _TEXT_FIELDS if not isinstance(getattr(record, name), str)]
    if wrong:
        return f"its {', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not text"
    if record.run_id != run_id:
        return f"it describes run {record.run_id!r}, not {run_id!r}"
    return None


def damaged_object(where: str, problem: str) -> StoreError:
    """A store object that is not what campaign wrote: named, with what is wrong and what to do."""
    return StoreError(
        f"{where} is damaged: {problem}. campaign cannot read the run without it; restore it from "
        "a copy (S3 versioning keeps earlier versions) or start a new run. `campaign runs` lists "
        "the other runs."
    )


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
