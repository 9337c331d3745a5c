"""What templates see: the names a stage's `run`, `produces` and `incremental` may use, and their checks.

Besides the run's context (sf, run_id, output_dir, work_dir, stage, campaign, vars, features,
cargo_build), `needs` names what each needed stage produces, so a bench stage never rebuilds the data
stage's path by hand:

    run: python bench.py --data {{ needs['tpch-generate'].produces[0] }}

`needs[NAME].produces` is the list of NAME's declared outputs and `needs[NAME].incremental` its
incremental file (or none), as absolute paths under the output dir, for the same scale factor. A
stage without `per: scale_factor` has no single SF, so it cannot name a per-SF stage's outputs.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from campaign.spec.templating import TemplateProblem, names_in, render

if TYPE_CHECKING:
    from campaign.spec.model import CampaignSpec, Stage

# Two values no real campaign uses: rendering a per-SF path with both shows whether it contains the SF.
PROBE_SFS = ("0.000123", "98765")


def template_context(spec: CampaignSpec, *, stage: str, sf: str | None,
                     run_id: str, output_dir: str, work_dir: str) -> dict:
    """What a stage's `run`, `produces` and `incremental` templates may use."""
    context = _own_context(spec, stage=stage, sf=sf, run_id=run_id, output_dir=output_dir, work_dir=work_dir)
    context["needs"] = _needs_context(spec, spec.stage(stage), context)
    return context


def _own_context(spec: CampaignSpec, *, stage: str, sf: str | None,
                 run_id: str, output_dir: str, work_dir: str) -> dict:
    context = {"campaign": spec.name, "stage": stage, "run_id": run_id,
               "output_dir": output_dir, "work_dir": work_dir, "vars": spec.vars,
               "features": ",".join(spec.features), "cargo_build": spec.cargo_build}
    if sf is not None:
        context["sf"] = sf
    return context


def _needs_context(spec: CampaignSpec, stage: Stage, context: dict) -> dict:
    """For each needed stage whose outputs are known here: its produces and incremental, absolute."""
    needs = {}
    for name in stage.needs:
        needed = spec.stage(name)
        if needed.per_sf and "sf" not in context:
            continue  # a global stage after a per-SF stage: no single SF's outputs to name
        own = {**context, "stage": name}
        if not needed.per_sf:
            own.pop("sf", None)
        try:
            needs[name] = {"produces": [_under(context["output_dir"], render(p, own)) for p in needed.produces],
                           "incremental": needed.incremental and _under(context["output_dir"],
                                                                         render(needed.incremental, own))}
        except TemplateProblem:
            continue  # reported on the needed stage itself
    return needs


def _under(output_dir: str, relative: str) -> str:
    return str(PurePosixPath(output_dir) / relative.strip()) if output_dir else str(PurePosixPath(relative.strip()))


def check_templates(spec: CampaignSpec, problems) -> None:
    """Every template renders; per-SF outputs contain the SF; outputs stay inside the output dir."""
    for stage in spec.stages:
        contexts = [_probe_context(spec, stage, sf) for sf in (PROBE_SFS if stage.per_sf else (None,))]
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
                problems.add(stage.line, f"{where}: {label} {source!r} must be a relative path inside the "
                             "output dir (no leading '/', no '..').")
            if stage.per_sf and rendered[0] == rendered[1]:
                problems.add(stage.line, f"{where}: {label} {source!r} does not contain the scale factor, so "
                             "every SF would write the same path (SF10 would overwrite SF1). "
                             "Put {{ sf }} in it, e.g. results/sf{{ sf }}/...")


def _hint(stage: Stage, source: str, err: TemplateProblem) -> str:
    if "needs" in names_in(source):
        listed = ", ".join(stage.needs) or "none"
        return (f" needs[NAME] names a stage this stage needs (its needs: {listed}), e.g. "
                "{{ needs['NAME'].produces[0] }}; a stage without 'per: scale_factor' cannot name a per-SF "
                "stage's outputs.")
    if "'sf'" in str(err):
        return " Stages without 'per: scale_factor' have no sf."
    return ""


def _stage_templates(stage: Stage) -> list[tuple[str, str]]:
    templates = [("run", stage.run)] + [("produces", p) for p in stage.produces]
    if stage.incremental:
        templates.append(("incremental", stage.incremental))
    return templates


def _probe_context(spec: CampaignSpec, stage: Stage, sf: str | None) -> dict:
    return template_context(spec, stage=stage.name, sf=sf,
                            run_id="RUN-ID", output_dir="/OUTPUT", work_dir="/WORK")


def is_inside_output_dir(path: str) -> bool:
    pure = PurePosixPath(path)
    return bool(path.strip()) and not pure.is_absolute() and ".." not in pure.parts
