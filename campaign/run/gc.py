"""`campaign gc`: remove what finished runs left on this machine that can be had again: the clean checkout
(and an A/B run's side checkouts) and the regenerable data (outputs of `upload: false` stages, recorded in the
journal as local_outputs).

A run is cleaned only when its local journal says it ended (succeeded or failed: an interrupted run is meant
to be resumed), no agent holds its lease, and its manifest is in the store with every artifact verifying
there, covering every artifact the local journal records. Results, logs, the journal, superseded outputs
and anything else are never touched.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.filesize import decimal

from campaign.errors import NotInStore, StoreError
from campaign.run.cache import CACHE_STAGING
from campaign.run.dirs import RunDir
from campaign.run.entries import stage_entries
from campaign.run.journal import FAILED, SUCCEEDED, read_entries
from campaign.run.keys import RunKeys
from campaign.run.lease import read_lease
from campaign.run.manifest import artifacts_of_journal, read_manifest, verify_artifacts
from campaign.store import Store


@dataclass
class GcReport:
    lines: list[str] = field(default_factory=list)
    freed: int = 0  # bytes removed (or that would be, in a dry run)
    cleaned: list[str] = field(default_factory=list)  # run ids
    kept: dict[str, str] = field(default_factory=dict)  # run id -> why


def collect_garbage(state_dir: Path, store: Store, *, dry_run: bool, older_than_days: float | None) -> GcReport:
    report = GcReport()
    runs = sorted(p for p in (state_dir / "runs").iterdir() if p.is_dir()) if (state_dir / "runs").is_dir() else []
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days) if older_than_days is not None else None
    for folder in runs:
        run = RunDir(folder)
        reason = keep_reason(run, folder.name, store, cutoff)
        if reason:
            report.kept[folder.name] = reason
            report.lines.append(f"kept {folder.name}: {reason}")
            continue
        removable = [(path, size_of(path)) for path in leftovers(run)]
        if not removable:
            continue
        report.cleaned.append(folder.name)
        for path, size in removable:
            report.freed += size
            report.lines.append(f"{'would remove' if dry_run else 'removed'} {path} ({decimal(size)})")
            if not dry_run:
                remove(path, run.outputs)
    verb = "would free" if dry_run else "freed"
    report.lines.append(
        f"gc: {len(report.cleaned)} finished run(s) {'would be ' if dry_run else ''}cleaned, {verb} "
        f"{decimal(report.freed)}; {len(report.kept)} run(s) kept{' (dry run: nothing removed)' if dry_run else ''}"
    )
    return report


def keep_reason(run: RunDir, run_id: str, store: Store, cutoff: datetime | None) -> str:
    """Why run's leftovers must stay (one sentence), or '' when they may go."""
    if not run.journal.is_file():
        return f"no journal at {run.journal}: not a run this machine can judge"
    try:
        entries = read_entries(run.journal.read_bytes(), str(run.journal))
    except StoreError as err:
        return f"its journal cannot be read ({err})"
    ended = [e for e in entries if e.get("kind") == "run"][-1:]
    state = ended[0]["state"] if ended else "started"
    if state not in (SUCCEEDED, FAILED):
        return f"not finished (its journal says {state}): `campaign resume {run_id}` or wait for it"
    if cutoff is not None and datetime.fromisoformat(ended[0]["ts"]) > cutoff:
        return f"ended {ended[0]['ts']}, within --older-than"
    if read_lease(store, run_id) is not None:
        return f"an agent holds its lease in {store.where(RunKeys(run_id).lease)}"
    return _unverified(entries, run_id, store)


def _unverified(entries: list[dict], run_id: str, store: Store) -> str:
    """'' when the store's manifest covers every artifact the journal records and each verifies there."""
    key = RunKeys(run_id).manifest
    try:
        manifest = read_manifest(store.get_bytes(key), store.where(key))
    except NotInStore:
        return f"no manifest at {store.where(key)}: its results are not verified in this store (another --store?)"
    except StoreError as err:
        return str(err)
    listed = {a.key: a for a in manifest}
    missing = [a.key for a in artifacts_of_journal(entries) if listed.get(a.key) != a]
    if missing:
        return f"the manifest lacks {len(missing)} artifact(s) the journal records, e.g. {missing[0]}"
    problems = verify_artifacts(store, manifest, deep=False)
    return f"{len(problems)} stored artifact(s) fail verification, e.g. {problems[0]}" if problems else ""


def leftovers(run: RunDir) -> list[Path]:
    """The checkout, the side checkouts, a cache fetch's staging folder a killed agent left, and each
    regenerable (local-only) data file that exists."""
    found = [path for path in (run.checkout, run.root / "sides") if path.exists()]
    found += sorted(run.root.glob(f"{CACHE_STAGING}*"))
    entries = read_entries(run.journal.read_bytes(), str(run.journal))
    recorded = {r["path"] for e in stage_entries(entries) for r in e.local_outputs or [] if isinstance(r, dict)}
    for relative in sorted(recorded):
        path = run.outputs / relative
        if path.is_file() and not path.is_symlink() and path.resolve().is_relative_to(run.outputs.resolve()):
            found.append(path)
    return found


def size_of(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    return sum((Path(folder) / name).lstat().st_size for folder, _, names in os.walk(path) for name in names)


def remove(path: Path, outputs: Path) -> None:
    """Remove a folder or a data file; then the data file's folders that it left empty, up to outputs."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        return
    path.unlink()
    for parent in path.parents:
        if parent == outputs or outputs not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()
