"""The manifest: every artifact of a run with size and SHA-256; what `campaign verify` checks."""

from __future__ import annotations

import json

from campaign.store import Artifact, Store


def manifest_bytes(run_id: str, artifacts: list[Artifact]) -> bytes:
    ordered = sorted({a.key: a for a in artifacts}.values(), key=lambda a: a.key)
    document = {"run_id": run_id, "artifacts": [a.to_dict() for a in ordered]}
    return json.dumps(document, indent=1, sort_keys=True).encode("utf-8")


def read_manifest(data: bytes) -> list[Artifact]:
    document = json.loads(data)
    return [Artifact(key=a["key"], size=a["size"], sha256=a["sha256"]) for a in document["artifacts"]]


def verify_artifacts(store: Store, artifacts: list[Artifact], *, deep: bool) -> list[str]:
    """One sentence per artifact that does not match; empty when all do."""
    return [problem for a in artifacts if (problem := store.verify(a, deep=deep))]
