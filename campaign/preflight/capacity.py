"""Capacity: the disk and memory a selection's stage runs declare (`requires: disk_gb, memory_gb`), against
the machine that runs them. Locally that is this machine (free disk of the state dir, physical memory);
the AWS target compares the same needs with each instance type's memory and the root volume.

Disk adds up over the stage runs (their outputs stay in the run's output dir until the run ends); memory
is the largest one stage run needs (they run one at a time).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from campaign.planning.graph import StageRun
from campaign.planning.plan import RUN, Plan
from campaign.planning.verdict import Verdict
from campaign.spec.capacity import CapacityProblem, amount_at
from campaign.spec.model import CampaignSpec

CHECK = "capacity"
MEMINFO = Path("/proc/meminfo")
GIB = 2**30  # disk_gb, memory_gb, root_volume_gb and instance memory are all in GiB


@dataclass(frozen=True)
class Need:
    gb: float
    stage_run: str  # the largest contributor (memory) or the largest single one (disk)


@dataclass(frozen=True)
class Needs:
    disk: Need | None  # total over the stage runs; stage_run names the largest
    memory: Need | None  # the largest single stage run
    problems: tuple[str, ...] = ()  # templates that did not render (after --var)

    @property
    def declared(self) -> bool:
        return self.disk is not None or self.memory is not None or bool(self.problems)


def selection_needs(spec: CampaignSpec, runs: Iterable[StageRun]) -> Needs:
    disks: list[tuple[float, str]] = []
    memories: list[tuple[float, str]] = []
    problems: list[str] = []
    for run in runs:
        for key, into in (("disk_gb", disks), ("memory_gb", memories)):
            try:
                gb = amount_at(getattr(run.stage.requires, key), run.sf, spec.vars)
            except CapacityProblem as err:
                problems.append(f"{run.id}: requires.{key} {err}")
                continue
            if gb is not None:
                into.append((gb, run.id))
    disk = Need(sum(gb for gb, _ in disks), max(disks)[1]) if disks else None
    memory = Need(*max(memories)) if memories else None
    return Needs(disk, memory, tuple(problems))


def local_capacity_verdict(spec: CampaignSpec, runs: Iterable[StageRun], state_dir: Path) -> Verdict | None:
    """Refuses when the selection needs more disk (free, where the run folders go) or memory (physical)
    than this machine has; WARN when memory is only short of what is available now. None: nothing declared."""
    needs = selection_needs(spec, runs)
    if not needs.declared:
        return None
    if needs.problems:
        return Verdict(CHECK, False, "a capacity template does not compute: " + "; ".join(needs.problems))
    total_gb, available_gb = memory_gb()
    short, seen = _shortfalls(needs, existing_ancestor(state_dir), total_gb)
    if short:
        return Verdict(CHECK, False, "this machine is too small: " + "; ".join(short))
    if needs.memory is not None and needs.memory.gb > available_gb:
        return Verdict(
            CHECK,
            True,
            f"{needs.memory.stage_run} needs {needs.memory.gb:.1f} GB of memory; only {available_gb:.1f} GB "
            f"of {total_gb:.1f} GB is available now (other processes use the rest)",
            warning=True,
        )
    return Verdict(CHECK, True, "needs " + ", ".join(seen))


def _shortfalls(needs: Needs, where: Path, total_gb: float) -> tuple[list[str], list[str]]:
    """(what is short, what was compared)."""
    free_gb = shutil.disk_usage(where).free / GIB
    short, seen = [], []
    if needs.disk is not None:
        seen.append(f"disk {needs.disk.gb:.1f} GB of {free_gb:.1f} GB free in {where}")
        if needs.disk.gb > free_gb:
            short.append(
                f"disk: the selection needs {needs.disk.gb:.1f} GB (largest: {needs.disk.stage_run}) but {where} "
                f"has {free_gb:.1f} GB free; free space, choose a smaller selection, or --state-dir on a larger disk"
            )
    if needs.memory is not None:
        seen.append(f"memory {needs.memory.gb:.1f} GB of {total_gb:.1f} GB")
        if needs.memory.gb > total_gb:
            short.append(
                f"memory: {needs.memory.stage_run} needs {needs.memory.gb:.1f} GB but this machine has "
                f"{total_gb:.1f} GB; choose a smaller scale factor, or run it on a larger machine (--target aws)"
            )
    return short, seen


def existing_ancestor(path: Path) -> Path:
    """The folder itself, or the nearest parent that exists (the state dir is created by the run)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def memory_gb() -> tuple[float, float]:
    """(physical, available now) in GiB, from /proc/meminfo."""
    values = {}
    for line in MEMINFO.read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemTotal", "MemAvailable"):
            values[name] = int(rest.split()[0]) * 1024 / GIB
    total = values["MemTotal"]
    return total, values.get("MemAvailable", total)


def with_local_capacity(plan: Plan, state_dir: Path) -> Plan:
    """plan with the local capacity verdict added (for the stage runs it will run), when any is declared."""
    verdict = local_capacity_verdict(plan.spec, [p.run for p in plan.runs if p.action == RUN], state_dir)
    return plan if verdict is None else replace(plan, verdicts=plan.verdicts + (verdict,))
