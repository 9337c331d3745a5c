"""The result record contract (README: "The result record"), read from a results file or a run.

A bench's incremental results file holds one JSON record per execution. What campaign needs:

    query (or item)   the item's name                       required
    ok                did the execution succeed              required
    elapsed_ms        its time                               required when ok
    engine, sf        further parts of the item's key        optional
    iteration         the execution's number                 optional
    warmup            true: not a timed execution            optional (false)
    cold              true (page cache dropped first), "lukewarm" (could not be dropped) or false
    valid             true / false (wrong answer) / null     optional
    answer_digest     a digest of the answer                 optional ("answer changed")
    side, round       the A/B side and round of `campaign ab`  optional
    engine_version    reported with the host fingerprint     optional

The warm sample of an item is its ok records that are neither warm-up nor cold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign.errors import InputError
from campaign.jsonl import complete_lines_of

Key = tuple[str, str, str]  # (sf, item, engine); "" where the records have no such field


def item_of(record: dict[str, Any]) -> str:
    return str(record.get("query", record.get("item", "")))


def is_cold(record: dict[str, Any]) -> bool:
    return record.get("cold") not in (None, False)


def is_warm_timing(record: dict[str, Any]) -> bool:
    return bool(record.get("ok")) and not record.get("warmup") and not is_cold(record)


def check_record(record: Any, where: str) -> dict[str, Any]:
    """The record when it follows the contract; InputError naming the field and the fix otherwise."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: a result record is a JSON object, got {type(record).__name__}")
    if "query" not in record and "item" not in record:
        raise InputError(
            f"{where}: a result record needs `query` (or `item`) naming what ran (README: The result record)"
        )
    if not isinstance(record.get("ok"), bool):
        raise InputError(f"{where}: field `ok` must be true or false (README: The result record)")
    if record["ok"] and not isinstance(record.get("elapsed_ms"), int | float):
        raise InputError(f"{where}: an ok record needs a numeric `elapsed_ms` (README: The result record)")
    return record


def parse_records(data: bytes, where: str) -> list[dict[str, Any]]:
    """Every complete line of a results file, checked against the contract (a torn last line is ignored)."""
    records = []
    for number, line in enumerate(complete_lines_of(data).decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{where}, line {number}: not a JSON record ({err.msg})") from None
        records.append(check_record(document, f"{where}, line {number}"))
    return records


def read_results_file(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"results file {path} cannot be read ({err.strerror or err})") from None
    return parse_records(data, str(path))


@dataclass
class Group:
    """The records of one item (query × engine × sf) on one side."""

    warm: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    cold_kind: str = ""  # "cold", "lukewarm" or ""
    failed: int = 0
    invalid: int = 0
    digests: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        return bool(self.failed or self.invalid)


def key_of(record: dict[str, Any], without: str = "") -> Key:
    parts = {"sf": str(record.get("sf", "")), "engine": str(record.get("engine", ""))}
    if without in parts:
        parts[without] = ""
    return parts["sf"], item_of(record), parts["engine"]


def group_records(records: Iterable[dict[str, Any]], *, without: str = "") -> dict[Key, Group]:
    """Records by item key, in first-seen order; `without` leaves a field out of the key (--by)."""
    groups: dict[Key, Group] = {}
    for record in records:
        group = groups.setdefault(key_of(record, without), Group())
        _add(group, record)
    return groups


def _add(group: Group, record: dict[str, Any]) -> None:
    if not record["ok"]:
        group.failed += 1
        group.errors.append(str(record.get("error") or "failed"))
        return
    if record.get("valid") is False:
        group.invalid += 1
        group.errors.append(str(record.get("mismatch") or "wrong answer"))
    if record.get("answer_digest"):
        group.digests.add(str(record["answer_digest"]))
    if is_cold(record):
        group.cold.append(float(record["elapsed_ms"]))
        group.cold_kind = "cold" if record["cold"] is True else str(record["cold"])
    elif not record.get("warmup"):
        group.warm.append(float(record["elapsed_ms"]))


def key_label(key: Key) -> str:
    sf, item, engine = key
    return " ".join(part for part in (item, engine, f"sf{sf}" if sf else "") if part)


def engine_versions(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    return {str(r["engine"]): str(r["engine_version"]) for r in records if r.get("engine") and r.get("engine_version")}
