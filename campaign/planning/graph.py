"""Expansion: campaign spec × selection -> stage runs in dependency order.

A per-SF stage becomes one stage run per selected scale factor (`tpch-bench[sf10]`), needing
the same SF's run of each per-SF stage it needs, and the single run of each other stage.
"""

from __future__ import annotations

import graphlib
import heapq
from dataclasses import dataclass

from campaign.spec.model import (
    PLACEHOLDER_OUTPUT_DIR,
    PLACEHOLDER_RUN_ID,
    PLACEHOLDER_WORK_DIR,
    CampaignSpec,
    Stage,
    incremental_path,
    stage_outputs,
    stage_run_id,
    template_context,
)
from campaign.spec.templating import render


@dataclass(frozen=True)
class StageRun:
    stage: Stage
    sf: str | None
    needs: tuple[str, ...]  # ids of the stage runs this one needs

    @property
    def id(self) -> str:
        return stage_run_id(self.stage.name, self.sf)

    def context(self, spec: CampaignSpec, *, run_id: str, output_dir: str, work_dir: str) -> dict:
        return template_context(
            spec, stage=self.stage.name, sf=self.sf, run_id=run_id, output_dir=output_dir, work_dir=work_dir
        )

    def outputs(self, spec: CampaignSpec) -> tuple[str, ...]:
        """Declared outputs, rendered, relative to the output dir (the incremental file included)."""
        return stage_outputs(spec, self.stage, self.sf)

    def incremental(self, spec: CampaignSpec) -> str | None:
        """The incremental results file, relative to the output dir; None when the stage has none."""
        return incremental_path(spec, self.stage, self.sf)

    def command(self, spec: CampaignSpec, *, run_id: str, output_dir: str, work_dir: str) -> str:
        return render(self.stage.run, self.context(spec, run_id=run_id, output_dir=output_dir, work_dir=work_dir))

    def placeholder_command(self, spec: CampaignSpec) -> str:
        """The command as plan and preflight inspect it: rendered with stand-in folders, nothing run."""
        return self.command(
            spec, run_id=PLACEHOLDER_RUN_ID, output_dir=PLACEHOLDER_OUTPUT_DIR, work_dir=PLACEHOLDER_WORK_DIR
        )


def expand(spec: CampaignSpec, selection: tuple[str, ...]) -> list[StageRun]:
    """Stage runs for selection in a dependency order (SF by SF where the graph allows, campaign order within)."""
    runs = {run.id: run for run in _stage_runs(spec, selection)}
    return _ordered(runs, spec, selection)


def _stage_runs(spec: CampaignSpec, selection: tuple[str, ...]) -> list[StageRun]:
    by_name = {stage.name: stage for stage in spec.stages}
    runs = []
    for stage in spec.stages:
        for sf in selection if stage.per_sf else (None,):
            needs = tuple(need_id for need in stage.needs for need_id in _need_ids(by_name[need], sf, selection))
            runs.append(StageRun(stage=stage, sf=sf, needs=needs))
    return runs


def _need_ids(needed: Stage, sf: str | None, selection: tuple[str, ...]) -> list[str]:
    if not needed.per_sf:
        return [stage_run_id(needed.name, None)]
    if sf is not None:
        return [stage_run_id(needed.name, sf)]
    return [stage_run_id(needed.name, each) for each in selection]  # a global stage after all SFs


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
