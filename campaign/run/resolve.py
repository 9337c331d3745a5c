"""Run ids as a user types them: the full id, a unique prefix of it, or `latest` (the newest run).

Every command that takes a run id resolves it here, against the store it reads.
"""

from __future__ import annotations

from pathlib import Path

from campaign.errors import InputError
from campaign.run.keys import RUNS_PREFIX
from campaign.run.sweep import sweep_ids
from campaign.store import Store

LATEST = "latest"


def resolve_run_id(store: Store, text: str) -> str:
    """The one run id text names in store; InputError naming the candidates when it names none or several."""
    wanted = text.strip().rstrip("/")
    if not wanted:
        raise InputError("an empty run id; `campaign runs` lists the runs in the store.")
    runs = sorted(store.list_children(RUNS_PREFIX), reverse=True)
    if wanted == LATEST:
        if not runs:
            raise InputError(f"`latest`: there is no run in the store {store.where(RUNS_PREFIX)} yet.")
        return runs[0]
    if wanted in runs:
        return wanted
    matches = [run for run in runs if run.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(
            f"run {wanted} is not in the store {store.where(RUNS_PREFIX)}. "
            "`campaign runs --store …` lists the runs there; pass the store the run used."
        )
    shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
    raise InputError(f"run id prefix {wanted!r} matches {len(matches)} runs ({shown}); type more of the id.")


def resolve_sweep_id(store: Store, state_dir: Path, text: str) -> str:
    """The one sweep text names (a full sweep id or a unique prefix of one), in store or mirrored in state_dir."""
    wanted = text.strip().rstrip("/")
    known = sweep_ids(store, state_dir)
    if wanted in known:
        return wanted
    matches = [sweep for sweep in known if sweep.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(
            f"sweep {wanted} is neither in the store {store.where('sweeps/')} nor on this machine "
            f"({state_dir / 'sweeps'}); pass the store the sweep used (--store s3://BUCKET/PREFIX)."
        )
    raise InputError(f"sweep id prefix {wanted!r} matches {len(matches)} sweeps ({', '.join(matches[:5])}); type more.")
