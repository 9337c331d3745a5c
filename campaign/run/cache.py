"""The data cache in the store: one entry per cache key, the files a cached stage produced plus a manifest.

cache/<key>/files/<path>        each produced file, at its path relative to the output dir (verified writes)
cache/<key>/manifest.json       key, stage, SF, created_at, the key's inputs, and size and sha256 of every
                                file (written last: an entry without it is incomplete, a miss)

A fetch trusts nothing it has not checked (as a prebuilt fetch does): every file is downloaded into a staging
folder, its size and SHA-256 compared with the manifest, and only when all match are the outputs moved into
place. A missing file, another digest, or a manifest naming a path outside the stage's outputs refuses the whole
entry (CacheRefused, naming the key and the file); the stage then generates and replaces the entry.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from campaign.errors import CampaignError, InputError, NotInStore
from campaign.planning.plan import RUN, Plan, with_cache
from campaign.run.cache_key import CacheKey, NoCacheKey, cache_key
from campaign.run.outputdir import output_files
from campaign.spec.model import is_inside_output_dir
from campaign.store import Store, open_store
from campaign.system.clock import now_iso

PREFIX = "cache"
MANIFEST = "manifest.json"
FORMAT = 1
CACHE_STAGING = ".cache-staging-"  # + the key's first 16 digits: a fetch's folder in the run's folder


class CacheRefused(CampaignError):
    """A cache entry that must not be used (tampered, incomplete, damaged); the message names key and file."""


def manifest_key(key: str) -> str:
    return f"{PREFIX}/{key}/{MANIFEST}"


def file_key(key: str, relative: str) -> str:
    return f"{PREFIX}/{key}/files/{relative}"


@dataclass(frozen=True)
class CacheEntry:
    key: str
    stage: str
    sf: str | None
    created_at: str
    files: list[dict] = field(default_factory=list)  # {path, size, sha256}, path relative to the output dir
    inputs: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(record["size"] for record in self.files)

    def to_bytes(self) -> bytes:
        document = {"format": FORMAT, **self.__dict__}
        return json.dumps(document, indent=1, sort_keys=True).encode()


def has_entry(store: Store, key: str) -> bool:
    """Whether a complete entry (its manifest) exists: what `plan` asks, without reading the files."""
    return store.stat(manifest_key(key)) is not None


def read_entry(store: Store, key: str) -> CacheEntry | None:
    """The entry's manifest, or None when there is no entry; CacheRefused when it is damaged, or incomplete
    (files without a manifest: a store that was interrupted)."""
    try:
        data = store.get_bytes(manifest_key(key))
    except NotInStore:
        leftovers = store.list_keys(f"{PREFIX}/{key}/")
        if leftovers:
            raise CacheRefused(
                f"cache entry {key} is incomplete: {store.where(leftovers[0])} and {len(leftovers) - 1} more "
                f"object(s) but no {store.where(manifest_key(key))} (a store that was interrupted)"
            ) from None
        return None
    where = store.where(manifest_key(key))
    try:
        document = json.loads(data)
    except ValueError as err:
        raise CacheRefused(f"cache entry {key}: {where} is not JSON ({err})") from None
    problem = _shape_problem(document, key)
    if problem:
        raise CacheRefused(f"cache entry {key}: {where} is damaged: {problem}")
    fields = ("key", "stage", "sf", "created_at", "files", "inputs")
    return CacheEntry(**{name: document.get(name) for name in fields})


def _shape_problem(document: object, key: str) -> str | None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return f"not a format-{FORMAT} cache manifest"
    if document.get("key") != key:
        return f"it is the manifest of key {document.get('key')!r}"
    files = document.get("files")
    good = isinstance(files, list) and files and all(_is_file_record(r) for r in files)
    return None if good else "its files are not a non-empty list of {path, size, sha256}"


def _is_file_record(record: object) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("path"), str)
        and isinstance(record.get("size"), int)
        and isinstance(record.get("sha256"), str)
    )


@dataclass(frozen=True)
class Fetched:
    files: int
    size: int
    seconds: float


def fetch(store: Store, entry: CacheEntry, outputs: list[str], outputs_dir: Path, scratch: Path) -> Fetched:
    """Download and verify every file of entry, then move the declared outputs into outputs_dir.

    CacheRefused, with nothing moved into outputs_dir, when a file is missing, differs from the manifest, or
    lies outside outputs (the stage's declared produces); an output already in place is never overwritten.
    """
    started = time.monotonic()
    staging = scratch / f"{CACHE_STAGING}{entry.key[:16]}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for record in entry.files:
            _fetch_one(store, entry.key, record, outputs, staging)
        for output in outputs:
            _check_movable(entry.key, staging / output, outputs_dir / output, output)
        for output in outputs:
            (outputs_dir / output).parent.mkdir(parents=True, exist_ok=True)
            (staging / output).rename(outputs_dir / output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Fetched(len(entry.files), entry.size, time.monotonic() - started)


def _fetch_one(store: Store, key: str, record: dict, outputs: list[str], staging: Path) -> None:
    path = record["path"]
    if not is_inside_output_dir(path) or not _under_any(path, outputs):
        raise CacheRefused(
            f"cache entry {key}: its manifest names {path!r}, outside the stage's outputs {', '.join(outputs)}; "
            "the entry was not used"
        )
    where = store.where(file_key(key, path))
    local = staging / path
    try:
        size, sha256 = store.download_hashed(file_key(key, path), local)
    except NotInStore:
        raise CacheRefused(f"cache entry {key}: {where} is missing; the entry is incomplete") from None
    if (size, sha256) != (record["size"], record["sha256"]):
        raise CacheRefused(
            f"cache entry {key}: {where} is {size} bytes with sha256 {sha256}, but its manifest says "
            f"{record['size']} bytes with sha256 {record['sha256']}: tampered or damaged; the entry was not used"
        )


def _under_any(path: str, outputs: list[str]) -> bool:
    pure = PurePosixPath(path)
    return any(pure == PurePosixPath(o) or PurePosixPath(o) in pure.parents for o in outputs)


def _check_movable(key: str, staged: Path, dest: Path, output: str) -> None:
    if not staged.exists():
        raise CacheRefused(f"cache entry {key} holds nothing of the output {output}; the entry is incomplete")
    if dest.exists() or dest.is_symlink():
        raise CacheRefused(f"cache entry {key}: {dest} already exists; it was not overwritten")


def put_entry(store: Store, key: CacheKey, outputs: list[str], outputs_dir: Path) -> CacheEntry:
    """Store the produced outputs (files inside outputs_dir only) as key's entry, the manifest last.

    A damaged or incomplete entry of the same key is replaced: its manifest goes first, so nobody uses the
    entry while it is rewritten, and files it had that this one lacks are removed.
    """
    store.delete(manifest_key(key.key))
    records: list[dict] = []
    for file in output_files(outputs_dir, outputs):
        relative = file.relative_to(outputs_dir).as_posix()
        artifact = store.put_file(file, file_key(key.key, relative))
        records.append({"path": relative, "size": artifact.size, "sha256": artifact.sha256})
    kept = {file_key(key.key, record["path"]) for record in records}
    for stale in store.list_keys(f"{PREFIX}/{key.key}/files/"):
        if stale not in kept:
            store.delete(stale)
    entry = CacheEntry(key.key, key.stage, key.sf, now_iso(), records, key.inputs)
    store.put_bytes(entry.to_bytes(), manifest_key(key.key))
    return entry


def list_entries(store: Store) -> list[tuple[str, CacheEntry | None, str]]:
    """(key, entry or None, problem) of every key under cache/, sorted by key; problem is '' for a good entry."""
    listed: list[tuple[str, CacheEntry | None, str]] = []
    for key in entry_keys(store):
        try:
            entry = read_entry(store, key)
        except CacheRefused as err:
            listed.append((key, None, str(err)))
            continue
        listed.append((key, entry, "" if entry else "no manifest"))  # removed meanwhile
    return listed


def entry_keys(store: Store) -> list[str]:
    """The keys under cache/ that hold any object (a folder store keeps the empty folders of removed ones)."""
    return [key for key in store.list_children(f"{PREFIX}/") if store.list_keys(f"{PREFIX}/{key}/")]


def resolve_keys(store: Store, wanted: tuple[str, ...]) -> list[str]:
    """Full keys for wanted (full keys or unique prefixes of at least 8 characters); InputError naming the rest."""
    known = entry_keys(store)
    found, problems = [], []
    for text in wanted:
        matches = [key for key in known if key.startswith(text)] if len(text) >= 8 else []
        if len(matches) == 1:
            found.append(matches[0])
        else:
            why = "matches several keys" if matches else "is not a key in the store"
            problems.append(f"{text!r} {why}")
    if problems:
        raise InputError(
            f"cache rm: {'; '.join(problems)} ({store.where(PREFIX)}). `campaign cache ls` lists the keys "
            "(a prefix of 8 or more characters is enough when it is unique). Nothing was removed."
        )
    return list(dict.fromkeys(found))


def remove_entry(store: Store, key: str) -> int:
    """Remove key's entry, manifest first (so a half-removed entry is a miss); returns the objects removed."""
    keys = store.list_keys(f"{PREFIX}/{key}/")
    store.delete(manifest_key(key))
    for each in keys:
        store.delete(each)
    return len(keys)


def plan_cache(plan: Plan, store_url: str, root: Path) -> Plan:
    """Say in the plan whether each cached stage run fetches its entry (`cache hit`) or generates: its key
    computed from the repository under root, then one manifest lookup (no download)."""
    cached = [p.run for p in plan.runs if p.run.stage.cache is not None and p.action == RUN]
    if not cached:
        return plan  # no store is opened: a plan without a cached stage stays fast
    store = open_store(store_url)
    decisions = {}
    for run in cached:
        try:
            key = cache_key(plan.spec, run, root)
        except NoCacheKey as err:
            decisions[run.id] = f"generate (no cache key: {err})"
            continue
        hit = has_entry(store, key.key)
        decisions[run.id] = f"{'cache hit' if hit else 'generate'} (cache key {key.key[:12]})"
    return with_cache(plan, decisions)
