"""The campaign file's typed model: a campaign, its stages, and what a stage run's templates see.

Loading and validation live beside it (`campaign.spec.load`, `campaign.spec.validate`); this module
only describes. Stage-run naming and the rendered outputs of a stage at a scale factor are the
spec's vocabulary, so planning and validation share them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from campaign.spec.cargo import cargo_build_command, feature_union, runs_test_binaries
from campaign.spec.cluster import ClusterSpec, Service
from campaign.spec.templating import TemplateProblem, render

# Stand-ins for the folders a command is rendered with when nothing runs (plan, preflight, validation).
PLACEHOLDER_RUN_ID = "RUN-ID"
PLACEHOLDER_OUTPUT_DIR = "/OUTPUT"
PLACEHOLDER_WORK_DIR = "/WORK"


@dataclass(frozen=True)
class Requirements:
    cpu_flags: tuple[str, ...] = ()
    disk_gb: float | str | None = None  # GB, or a template per scale factor (campaign.spec.capacity)
    memory_gb: float | str | None = None


@dataclass(frozen=True)
class CacheInputs:
    """`cache: true` with `cache_inputs`: what, beyond the rendered command and the SF, the data depends on."""

    tools: tuple[str, ...] = ()  # commands whose output names a tool's version, e.g. `tpchgen-cli --version`
    files: tuple[str, ...] = ()  # repository files or folders (globs allowed) the stage reads


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    run: str
    line: int
    per_sf: bool = False
    needs: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    incremental: str | None = None
    timeout_s: float | None = None
    retries: int = 0
    requires: Requirements = field(default_factory=Requirements)
    upload: bool = True
    description: str = ""
    features: tuple[str, ...] = ()  # cargo features this stage needs from the consolidated build
    ci_overlap: str | None = None  # why CI cannot run this stage's unit tests (allows it on paid targets)
    build_output: tuple[str, ...] = ()  # a build stage's products, relative to the checkout (the prebuilt)
    on: str = "coordinator"  # on a cluster: `all` runs it on every node in parallel
    cache: CacheInputs | None = None  # `cache: true`: its outputs are stored once under cache/<key>/ and fetched


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    path: Path
    scale_factors: tuple[str, ...]
    default_selection: str
    vars: dict
    stages: tuple[Stage, ...]
    digest: str  # sha256 of the campaign file's bytes
    cluster: ClusterSpec | None = None  # the nodes the campaign needs (campaign.spec.cluster)
    services: tuple[Service, ...] = ()  # the long-lived processes on them
    overridden: tuple[str, ...] = ()  # vars set from the command line (--var)
    matrix_instance_types: tuple[str, ...] = ()  # `matrix: {instance_types: [...]}`: what a sweep runs

    def stage(self, name: str) -> Stage:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, Stage]:
        return {stage.name: stage for stage in self.stages}

    @cached_property
    def features(self) -> tuple[str, ...]:
        return feature_union(self.stages)

    @cached_property
    def cargo_build(self) -> str:
        return cargo_build_command(self.features, test_binaries=runs_test_binaries(self.stages))

    @property
    def build_stage(self) -> Stage | None:
        """The stage whose build_output is packed as the commit's prebuilt build (at most one)."""
        return next((s for s in self.stages if s.build_output), None)


def template_context(
    spec: CampaignSpec, *, stage: str, sf: str | None, run_id: str, output_dir: str, work_dir: str
) -> dict:
    """What a stage's `run`, `produces` and `incremental` templates may use.

    `needs[NAME].produces` lists what the needed stage NAME produces and `needs[NAME].incremental` its
    incremental file (or none), absolute under output_dir, at the same scale factor; a stage without
    `per: scale_factor` has no single SF, so it sees no per-SF stage there.
    """
    context = {
        "campaign": spec.name,
        "stage": stage,
        "run_id": run_id,
        "output_dir": output_dir,
        "work_dir": work_dir,
        "vars": spec.vars,
        "features": ",".join(spec.features),
        "cargo_build": spec.cargo_build,
    }
    if sf is not None:
        context["sf"] = sf
    context["needs"] = NeedsContext(spec, spec.stage(stage), context)
    return context


class NeedsContext(Mapping[str, dict[str, Any]]):
    """`needs` in a template: for each needed stage whose outputs are known here, its produces and
    incremental, absolute. Rendered only when a template asks (most never do: planning 500 stages
    would otherwise render every needed stage's outputs thousands of times)."""

    def __init__(self, spec: CampaignSpec, stage: Stage, context: dict[str, Any]):
        self._spec, self._context = spec, context
        self._names = [name for name in stage.needs if _outputs_known(spec.stage(name), context)]

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in self._names:
            raise TemplateProblem(f"needs has no stage {name!r}")
        needed, context = self._spec.stage(name), self._context
        own = {**context, "stage": name}
        if not needed.per_sf:
            own.pop("sf", None)
        return {
            "produces": [_under(context["output_dir"], render(p, own)) for p in needed.produces],
            "incremental": needed.incremental and _under(context["output_dir"], render(needed.incremental, own)),
        }

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _outputs_known(needed: Stage, context: dict[str, Any]) -> bool:
    """A global stage after a per-SF stage has no single SF's outputs to name."""
    return not (needed.per_sf and "sf" not in context)


def _under(output_dir: str, relative: str) -> str:
    base = PurePosixPath(output_dir) if output_dir else PurePosixPath()
    return str(base / relative.strip())


def stage_run_id(stage_name: str, sf: str | None) -> str:
    """A stage run's name: `tpch-bench[sf10]` per scale factor, the stage's name otherwise."""
    return f"{stage_name}[sf{sf}]" if sf is not None else stage_name


def stage_outputs(spec: CampaignSpec, stage: Stage, sf: str | None) -> tuple[str, ...]:
    """Declared outputs of stage at sf, rendered, relative to the output dir (the incremental file included)."""
    context = template_context(spec, stage=stage.name, sf=sf, run_id="", output_dir="", work_dir="")
    paths = [render(p, context) for p in stage.produces]
    if stage.incremental:
        paths.append(render(stage.incremental, context))
    return tuple(dict.fromkeys(str(PurePosixPath(p.strip())) for p in paths))


def incremental_path(spec: CampaignSpec, stage: Stage, sf: str | None) -> str | None:
    """The stage's incremental results file at sf, relative to the output dir; None when it has none."""
    if not stage.incremental:
        return None
    context = template_context(spec, stage=stage.name, sf=sf, run_id="", output_dir="", work_dir="")
    return str(PurePosixPath(render(stage.incremental, context)))


def is_inside_output_dir(path: str) -> bool:
    pure = PurePosixPath(path)
    return bool(path.strip()) and not pure.is_absolute() and ".." not in pure.parts
