"""The sides of a comparison: a run (by id, unique prefix or `latest`, in any store) or a results file.

    RUN                the run in the store given by --store (default: the repository's store)
    RUN@STORE          the run in another store (a folder or s3://BUCKET/PREFIX)
    PATH.jsonl         a results file following the record contract

A run's side holds the records of every results file (`*.jsonl`) among its stored outputs, and its
host fingerprint from run.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from campaign.errors import InputError
from campaign.results.records import engine_versions, parse_records, read_results_file
from campaign.run.keys import RunKeys
from campaign.run.record import read_record
from campaign.run.resolve import resolve_run_id
from campaign.store import Store, open_store


@dataclass(frozen=True)
class Side:
    name: str
    records: list[dict[str, Any]]
    host: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    sides: dict[str, str] = field(default_factory=dict)  # an `ab` run's sides (name -> commit)


def load_side(text: str, default_store: Callable[[], str]) -> Side:
    """The side text names; InputError naming it when it is neither a readable file nor a run."""
    path = Path(text)
    if path.suffix == ".jsonl" or path.is_file():
        if not path.is_file():
            raise InputError(f"results file {text} does not exist (a side is a run id or a .jsonl results file)")
        return Side(name=path.name, records=read_results_file(path))
    run_text, _, store_url = text.partition("@")
    store = open_store(store_url or default_store())
    return load_run(store, resolve_run_id(store, run_text))


def load_run(store: Store, run_id: str) -> Side:
    record = read_record(store, run_id)
    keys = RunKeys(run_id)
    records: list[dict[str, Any]] = []
    for key in sorted(store.list_keys(keys.outputs + "/")):
        if key.endswith(".jsonl"):
            records += parse_records(store.get_bytes(key), store.where(key))
    if not records:
        raise InputError(
            f"run {run_id} has no results ({store.where(keys.outputs)} holds no .jsonl file with "
            "records); `campaign status {run_id}` says how far it got."
        )
    return Side(name=run_id, records=records, host=dict(record.host), run_id=run_id, sides=dict(record.sides))


def split_side(side: Side, by: str) -> list[Side]:
    """One side per value of field `by` (engine, side, …), in first-seen order: `compare --by engine`."""
    values = list(dict.fromkeys(str(r[by]) for r in side.records if by in r))
    if len(values) < 2:
        raise InputError(
            f"--by {by}: {side.name} has {len(values)} distinct value(s) of `{by}` "
            f"({', '.join(values) or 'none'}); comparing needs at least two."
        )
    return [replace(side, name=value, records=[r for r in side.records if str(r.get(by)) == value]) for value in values]


def host_differences(base: Side, contender: Side) -> list[str]:
    """The host fingerprint fields and engine versions that differ between two sides, named."""
    found = []
    for name in sorted(set(base.host) | set(contender.host)):
        if base.host.get(name) != contender.host.get(name):
            found.append(f"host {name}: {base.host.get(name)} vs {contender.host.get(name)}")
    versions = (engine_versions(base.records), engine_versions(contender.records))
    for engine in sorted(set(versions[0]) & set(versions[1])):
        if versions[0][engine] != versions[1][engine]:
            found.append(f"{engine} version: {versions[0][engine]} vs {versions[1][engine]}")
    return found
