"""A cached data stage (`cache: true`) fetches its verified outputs from the store's cache instead of
generating them; after generating (a miss, or a refused entry) its verified outputs are stored for the next run.

A refused entry (tampered, incomplete, damaged) is said loudly, in the runner's events and the stage's log,
naming the key and the file; the stage then generates and replaces the entry. It is never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.filesize import decimal

import campaign.run.cache as cache
from campaign.agent.build_source import BANNER, append_to_log
from campaign.agent.context import AgentContext
from campaign.errors import StoreError
from campaign.planning.graph import StageRun
from campaign.run.cache_key import CacheKey, NoCacheKey, cache_key
from campaign.system.process import ProcessResult


@dataclass(frozen=True)
class CacheSource:
    key: CacheKey | None  # None: no key could be computed; the stage generates and nothing is stored
    fetched: ProcessResult | None  # the "process" of a verified fetch; None: the command generates


def fetch_or_generate(ctx: AgentContext, run: StageRun, log_path: Path, path: str) -> CacheSource:
    """The cache key of run, and its outputs fetched into the output dir when the store has a good entry."""
    try:
        key = cache_key(ctx.spec, run, ctx.run_dir.checkout, path=path)
    except NoCacheKey as err:
        _say(ctx, run, log_path, "no cache key", f"it generates and nothing is cached: {err}", warn=True)
        return CacheSource(None, None)
    where = ctx.store.where(cache.manifest_key(key.key))
    try:
        entry = cache.read_entry(ctx.store, key.key)
        if entry is None:
            _say(ctx, run, log_path, "cache miss", f"no entry {where}; generating, then storing it", key=key.key)
            return CacheSource(key, None)
        outputs = list(run.outputs(ctx.spec))
        fetched = cache.fetch(ctx.store, entry, outputs, ctx.run_dir.outputs, ctx.run_dir.root)
    except cache.CacheRefused as err:
        _refused(ctx, run, log_path, key, str(err))
        return CacheSource(key, None)
    except StoreError as err:  # the store could not deliver the entry (on AWS: the instance role may not read cache/)
        _say(ctx, run, log_path, "cache not readable", f"{err}; generating instead", warn=True, key=key.key)
        return CacheSource(key, None)
    _say(
        ctx,
        run,
        log_path,
        "cache hit",
        f"fetched {fetched.files} files ({decimal(fetched.size)}) of entry {key.key} from "
        f"{ctx.store.where(cache.PREFIX)}, every sha256 verified, in {fetched.seconds:.2f}s; nothing was generated",
        key=key.key,
    )
    return CacheSource(key, ProcessResult(0, False, fetched.seconds))


def store_generated(ctx: AgentContext, run: StageRun, log_path: Path, key: CacheKey) -> str | None:
    """Store the verified outputs as key's entry; the key, or None when the store refused (the stage still
    succeeded: its outputs are here; the next run generates again)."""
    try:
        entry = cache.put_entry(ctx.store, key, list(run.outputs(ctx.spec)), ctx.run_dir.outputs)
    except StoreError as err:
        _say(ctx, run, log_path, "cache entry not stored", str(err), warn=True, key=key.key)
        return None
    _say(
        ctx,
        run,
        log_path,
        "cache entry stored",
        f"{ctx.store.where(cache.PREFIX)}/{key.key}/ ({len(entry.files)} files, "
        f"{decimal(entry.size)}); later runs fetch it",
        key=key.key,
    )
    return key.key


def _refused(ctx: AgentContext, run: StageRun, log_path: Path, key: CacheKey, problem: str) -> None:
    message = (
        f"CACHE ENTRY REFUSED, NOT USED: {problem}.\n"
        f"The stage generates its data instead and replaces the entry. To drop it by hand: "
        f"`campaign cache rm {key.key} --store {ctx.record.store}`."
    )
    append_to_log(log_path, "campaign: " + message.replace("\n", "\ncampaign: "))
    ctx.log.error(f"{BANNER}\n{message}\n{BANNER}", stage_run=run.id, key=key.key)


def _say(
    ctx: AgentContext, run: StageRun, log_path: Path, event: str, text: str, *, warn: bool = False, key: str = ""
) -> None:
    append_to_log(log_path, f"campaign: {event}: {text}")
    (ctx.log.warning if warn else ctx.log.info)(event, stage_run=run.id, key=key or None, detail=text)
