"""Checks across a loaded campaign: references, the build rules, templates and output collisions."""

from __future__ import annotations

import graphlib
from pathlib import Path, PurePosixPath

from campaign.errors import InputError
from campaign.spec.cargo import compiles
from campaign.spec.model import (
    PLACEHOLDER_OUTPUT_DIR,
    PLACEHOLDER_RUN_ID,
    PLACEHOLDER_WORK_DIR,
    CampaignSpec,
    Stage,
    is_inside_output_dir,
    stage_outputs,
    stage_run_id,
    template_context,
)
from campaign.spec.selection import parse_selection
from campaign.spec.templating import TemplateProblem, names_in, render

BUILD_TEMPLATE_NAMES = {"features", "cargo_build"}
# Two values no real campaign uses: rendering a per-SF path with both shows whether it contains the SF.
_PROBE_SFS = ("0.000123", "98765")


def check_campaign(spec: CampaignSpec, problems: Problems, *, default_selection_line: int) -> None:
    """Everything that needs the whole campaign; raises InputError listing each problem with file:line."""
    _check_references(spec, problems, default_selection_line)
    _check_build(spec, problems)
    problems.raise_if_any()
    _check_templates(spec, problems)
    problems.raise_if_any()
    check_output_collisions(spec)


class Problems:
    """Collects every problem in the file so the user fixes them in one pass, not one per run."""

    def __init__(self, path: Path):
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [f"{self.path}:{line}: {message}" for line, message in sorted(self.items)]
        count = len(lines)
        header = f"campaign file {self.path} has {count} problem{'s' if count > 1 else ''}; nothing was run:"
        raise InputError("\n".join([header, *("  " + line for line in lines)]))


def _check_references(spec: CampaignSpec, problems: Problems, default_selection_line: int) -> None:
    """needs name known stages, the stage graph has no cycle, default_selection is allowed."""
    known = {stage.name for stage in spec.stages}
    for stage in spec.stages:
        for need in stage.needs:
            if need not in known:
                problems.add(
                    stage.line,
                    f"stage '{stage.name}': needs '{need}', which is not a stage of this "
                    f"campaign. Known stages: {', '.join(sorted(known))}.",
                )
    if problems.items:
        return
    try:
        graphlib.TopologicalSorter({s.name: s.needs for s in spec.stages}).prepare()
    except graphlib.CycleError as err:
        cycle = err.args[1]
        first = spec.stage(cycle[0])
        problems.add(
            first.line,
            f"stage '{first.name}': needs form a cycle: {' -> '.join(reversed(cycle))}. Remove one of these needs.",
        )
    try:
        parse_selection(spec.default_selection, spec)
    except InputError as err:
        problems.add(default_selection_line, f"default_selection: {err}")


def _check_build(spec: CampaignSpec, problems: Problems) -> None:
    """One build stage packs the prebuilt, declared features are built by it, nothing else compiles."""
    builders = [s for s in spec.stages if s.build_output]
    for extra in builders[1:]:
        problems.add(
            extra.line,
            f"stage '{extra.name}': only one stage may declare build_output (the commit's "
            f"prebuilt build); '{builders[0].name}' at line {builders[0].line} already does. Build "
            "everything in that one stage.",
        )
    wanting = [s for s in spec.stages if s.features]
    uses_union = any(s.kind == "build" and names_in(s.run) & BUILD_TEMPLATE_NAMES for s in spec.stages)
    if wanting and not uses_union:
        names = ", ".join(f"{s.name} ({', '.join(s.features)})" for s in wanting)
        problems.add(
            wanting[0].line,
            f"stages declare cargo features that no build stage builds: {names}. "
            "Put {{ cargo_build }} in the run of your kind: build stage (or pass --features "
            "'{{ features }}' to your own cargo build).",
        )
    for stage in spec.stages:
        compiling = compiles(stage.run) if stage.kind != "build" else None
        if compiling:
            problems.add(
                stage.line,
                f"stage '{stage.name}': its run compiles ({compiling}), so every boot would "
                "compile again, per stage. Declare the cargo features it needs (features: [...]), "
                "let the build stage build them once ({{ cargo_build }}), and run the built binary, "
                "e.g. target/release/<name>.",
            )


def _check_templates(spec: CampaignSpec, problems: Problems) -> None:
    """Every template renders; per-SF outputs contain the SF; outputs stay inside the output dir."""
    for stage in spec.stages:
        contexts = [_probe_context(spec, stage, sf) for sf in (_PROBE_SFS if stage.per_sf else (None,))]
        where = f"stage '{stage.name}'"
        for label, source in _stage_templates(stage):
            try:
                rendered = [render(source, context) for context in contexts]
            except TemplateProblem as err:
                problems.add(stage.line, f"{where}: {label} {source!r}: {err}.{_hint(stage, source, err)}")
                continue
            if label == "run":
                continue
            if not is_inside_output_dir(rendered[0]):
                problems.add(
                    stage.line,
                    f"{where}: {label} {source!r} must be a relative path inside the "
                    "output dir (no leading '/', no '..').",
                )
            if stage.per_sf and rendered[0] == rendered[1]:
                problems.add(
                    stage.line,
                    f"{where}: {label} {source!r} does not contain the scale factor, so "
                    "every SF would write the same path (SF10 would overwrite SF1). "
                    "Put {{ sf }} in it, e.g. results/sf{{ sf }}/...",
                )


def _hint(stage: Stage, source: str, err: TemplateProblem) -> str:
    if "needs" in names_in(source):
        listed = ", ".join(stage.needs) or "none"
        return (
            f" needs[NAME] names a stage this stage needs (its needs: {listed}), e.g. "
            "{{ needs['NAME'].produces[0] }}; a stage without 'per: scale_factor' cannot name a per-SF "
            "stage's outputs."
        )
    if "'sf'" in str(err):
        return " Stages without 'per: scale_factor' have no sf."
    return ""


def _stage_templates(stage: Stage) -> list[tuple[str, str]]:
    templates = [("run", stage.run)] + [("produces", p) for p in stage.produces]
    if stage.incremental:
        templates.append(("incremental", stage.incremental))
    return templates


def _probe_context(spec: CampaignSpec, stage: Stage, sf: str | None) -> dict:
    return template_context(
        spec,
        stage=stage.name,
        sf=sf,
        run_id=PLACEHOLDER_RUN_ID,
        output_dir=PLACEHOLDER_OUTPUT_DIR,
        work_dir=PLACEHOLDER_WORK_DIR,
    )


def check_output_collisions(spec: CampaignSpec) -> None:
    """Refuse two stage runs (over every allowed SF) that write the same path or one inside the other."""
    owners: dict[PurePosixPath, tuple[Stage, str]] = {}
    for stage in spec.stages:
        for sf in spec.scale_factors if stage.per_sf else (None,):
            run_id = stage_run_id(stage.name, sf)
            for output in stage_outputs(spec, stage, sf):
                owner = owners.setdefault(PurePosixPath(output), (stage, run_id))
                if owner[1] != run_id:
                    raise _collision(spec, stage, run_id, output, owner[1], output)
    for path, (stage, run_id) in owners.items():
        for parent in path.parents:
            other = owners.get(parent)
            if other and other[1] != run_id:
                raise _collision(spec, stage, run_id, str(path), other[1], str(parent))


def _collision(spec: CampaignSpec, stage: Stage, run_id: str, output: str, owner: str, owner_path: str) -> InputError:
    relation = "the same path" if output == owner_path else f"a path inside {owner_path}"
    return InputError(
        f"{spec.path}:{stage.line}: stage run {run_id} produces {output}, {relation}, which "
        f"{owner} also produces. One would overwrite the other's results. Give each stage run its own "
        "path (put {{ sf }} in per-SF outputs, and the stage name where two stages share a folder)."
    )
