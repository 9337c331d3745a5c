"""A run's identity and where its things live: run ids, run.json, store keys, local folders."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from campaign.errors import InputError, NotInStore, StoreError
from campaign.store import Store

RUNS_PREFIX = "runs/"
# What new_run_id makes (20261122T181500Z-1a2b3c4-k3f9), loosely: one path component, never '.' or '..'.
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def new_run_id(commit: str | None) -> str:
    """Sortable by time: 20261122T181500Z-1a2b3c4-k3f9."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{(commit or 'nocommit')[:7]}-{secrets.token_hex(2)}"


def check_run_id(run_id: str) -> str:
    """run_id itself when it can name a run (one folder name); InputError otherwise, before any path is built."""
    if not RUN_ID.match(run_id or ""):
        raise InputError(f"{run_id!r} is not a run id. A run id looks like 20261122T181500Z-1a2b3c4-k3f9 (letters, "
                         "digits, '-', '_', '.'; no '/'): the first line `campaign run` printed, or one "
                         "`campaign runs` lists.")
    return run_id


def run_key(run_id: str, *parts: str) -> str:
    check_run_id(run_id)
    return "/".join([f"{RUNS_PREFIX}{run_id}", *parts])


@dataclass(frozen=True)
class RunRecord:
    """run.json: what a run is, written before its first stage; the agent reads it back."""

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

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> RunRecord:
        document = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError(f"a JSON {type(document).__name__}, not an object")
        return cls(**document)


def read_record(store: Store, run_id: str) -> RunRecord:
    """The run's run.json; InputError when the run is not in the store, StoreError when run.json is damaged."""
    key = run_key(run_id, "run.json")
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
    text_fields = ("run_id", "campaign", "campaign_file", "campaign_digest", "selection", "target", "store")
    wrong = [name for name in text_fields if not isinstance(getattr(record, name), str)]
    if wrong:
        return f"its {', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not text"
    if record.run_id != run_id:
        return f"it describes run {record.run_id!r}, not {run_id!r}"
    return None


def damaged_object(where: str, problem: str) -> StoreError:
    """A store object that is not what campaign wrote: named, with what is wrong and what to do."""
    return StoreError(f"{where} is damaged: {problem}. campaign cannot read the run without it; restore it from "
                      "a copy (S3 versioning keeps earlier versions) or start a new run. `campaign runs` lists "
                      "the other runs.")


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


@dataclass(frozen=True)
class RunDir:
    """The local folder of one run: outputs, logs, the journal, and (locally) the clean checkout.

    On an instance the checkout is wherever userdata cloned the repository.
    """

    root: Path
    checkout_dir: Path | None = None

    @property
    def checkout(self) -> Path:
        return self.checkout_dir or self.root / "checkout"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"
