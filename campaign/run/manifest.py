"""The manifest: every artifact of a run with size and SHA-256; what `campaign verify` checks."""

from __future__ import annotations

import json

from campaign.run.entries import is_artifact_record, stage_entries
from campaign.run.journal import INVALIDATED
from campaign.run.record import damaged_object
from campaign.store import Artifact, Store


def manifest_bytes(run_id: str, artifacts: list[Artifact]) -> bytes:
    ordered = sorted({a.key: a for a in artifacts}.values(), key=lambda a: a.key)
    document = {"run_id": run_id, "artifacts": [a.to_dict() for a in ordered]}
    return json.dumps(document, indent=1, sort_keys=True).encode("utf-8")


def artifacts_of_journal(entries: list[dict]) -> list[Artifact]:
    """Every artifact the journal records, the latest per key; a stage run that was invalidated (its
    outputs failed verification on resume) drops what its earlier attempts recorded."""
    by_key: dict[str, Artifact] = {}
    owner: dict[str, str] = {}
    for entry in stage_entries(entries):
        if entry.state == INVALIDATED:
            for key in [k for k, run in owner.items() if run == entry.stage_run]:
                del by_key[key], owner[key]
        for recorded in entry.artifacts or []:
            by_key[recorded["key"]] = Artifact(**recorded)
            owner[recorded["key"]] = entry.stage_run
    return list(by_key.values())


def read_manifest(data: bytes, where: str = "manifest.json") -> list[Artifact]:
    """The manifest's artifacts; StoreError naming where when it is not the manifest campaign writes."""
    try:
        document = json.loads(data)
    except ValueError as err:
        raise damaged_object(where, f"not JSON ({err})") from None
    listed = document.get("artifacts") if isinstance(document, dict) else None
    if not isinstance(listed, list) or not all(is_artifact_record(a) for a in listed):
        raise damaged_object(where, "not a manifest (an object whose artifacts each have key, size and sha256)")
    return [Artifact(key=a["key"], size=a["size"], sha256=a["sha256"]) for a in listed]


def verify_artifacts(store: Store, artifacts: list[Artifact], *, deep: bool) -> list[str]:
    """One sentence per artifact that does not match; empty when all do."""
    return [problem for a in artifacts if (problem := store.verify(a, deep=deep))]
