"""Expansion: campaign spec × selection -> stage runs in dependency order.

A per-SF stage becomes one stage run per selected scale factor (`tpch-bench[sf10]`), needing
the same SF's run of each per-SF stage it needs, and the single run of each other stage.
"""

from __future__ import annotations

import graphlib
import heapq
from dataclasses import dataclass
from pathlib import PurePosixPath

from campaign.errors import InputError
from campaign.spec.context import template_context
from campaign.spec.model import CampaignSpec, Stage
from campaign.spec.templating import render


@dataclass(frozen=True)
class StageRun:
    stage: Stage
    sf: str | None
    needs: tuple[str, ...]  # ids of the stage runs this one needs

    @property
    def id(self) -> str:
        return run_id_of(self.stage.name, self.sf)

    def context(self, spec: CampaignSpec, *, run_id: str, output_dir: str, work_dir: str) -> dict:
        return template_context(spec, stage=self.stage.name, sf=self.sf,
                                run_id=run_id, output_dir=output_dir, work_dir=work_dir)

    def outputs(self, spec: CampaignSpec) -> tuple[str, ...]:
        """Declared outputs, rendered, relative to the output dir (the incremental file included)."""
        context = self.context(spec, run_id="", output_dir="", work_dir="")
        paths = [render(p, context) for p in self.stage.produces]
        if self.stage.incremental:
            paths.append(render(self.stage.incremental, context))
        return tuple(dict.fromkeys(_normal(p) for p in paths))

    def command(self, spec: CampaignSpec, *, run_id: str, output_dir: str, work_dir: str) -> str:
        return render(self.stage.run, self.context(spec, run_id=run_id, output_dir=output_dir, work_dir=work_dir))


def run_id_of(stage_name: str, sf: str | None) -> str:
    return f"{stage_name}[sf{sf}]" if sf is not None else stage_name


def expand(spec: CampaignSpec, selection: tuple[str, ...]) -> list[StageRun]:
    """Stage runs for selection in a dependency order (SF by SF where the graph allows, campaign order within)."""
    runs = {run.id: run for run in _stage_runs(spec, selection)}
    return _ordered(runs, spec, selection)


def _stage_runs(spec: CampaignSpec, selection: tuple[str, ...]) -> list[StageRun]:
    by_name = {stage.name: stage for stage in spec.stages}
    runs = []
    for stage in spec.stages:
        for sf in (selection if stage.per_sf else (None,)):
            needs = tuple(need_id for need in stage.needs for need_id in _need_ids(by_name[need], sf, selection))
            runs.append(StageRun(stage=stage, sf=sf, needs=needs))
    return runs


def _need_ids(needed: Stage, sf: str | None, selection: tuple[str, ...]) -> list[str]:
    if not needed.per_sf:
        return [run_id_of(needed.name, None)]
    if sf is not None:
        return [run_id_of(needed.name, sf)]
    return [run_id_of(needed.name, each) for each in selection]  # a global stage after all SFs


def _ordered(runs: dict[str, StageRun], spec: CampaignSpec, selection: tuple[str, ...]) -> list[StageRun]:
    stage_index = {stage.name: i for i, stage in enumerate(spec.stages)}
    sf_index = {sf: i for i, sf in enumerate(selection)}

    def priority(run_id: str) -> tuple[int, int]:
        run = runs[run_id]
        return (sf_index.get(run.sf, len(selection)) if run.sf is not None else -1, stage_index[run.stage.name])

    sorter = graphlib.TopologicalSorter({run_id: run.needs for run_id, run in runs.items()})
    sorter.prepare()
    ready: list = []
    ordered = []
    while sorter.is_active():
        for run_id in sorter.get_ready():
            heapq.heappush(ready, (priority(run_id), run_id))
        _, run_id = heapq.heappop(ready)
        ordered.append(runs[run_id])
        sorter.done(run_id)
    return ordered


def check_output_collisions(spec: CampaignSpec) -> None:
    """Refuse two stage runs (over every allowed SF) that write the same path or one inside the other."""
    runs = {run.id: run for run in _stage_runs(spec, spec.scale_factors)}
    owners: dict[PurePosixPath, str] = {}
    for run in runs.values():
        for output in run.outputs(spec):
            path = PurePosixPath(output)
            owner = owners.setdefault(path, run.id)
            if owner != run.id:
                raise _collision(spec, run, output, owner, output)
    for path, owner in owners.items():
        for parent in path.parents:
            other = owners.get(parent)
            if other and other != owner:
                raise _collision(spec, runs[owner], str(path), other, str(parent))


def _collision(spec: CampaignSpec, run: StageRun, output: str, owner: str, owner_path: str) -> InputError:
    same = output == owner_path
    relation = "the same path" if same else f"a path inside {owner_path}"
    return InputError(
        f"{spec.path}:{run.stage.line}: stage run {run.id} produces {output}, {relation}, which "
        f"{owner} also produces. One would overwrite the other's results. Give each stage run its own "
        "path (put {{ sf }} in per-SF outputs, and the stage name where two stages share a folder)."
    )


def _normal(path: str) -> str:
    return str(PurePosixPath(path.strip()))
