"""`load_campaign(path) -> CampaignSpec`: read the campaign file and validate it whole.

Every problem in the file is reported at once, with file:line and the stage it is in, before
anything runs. Pure: reads the file and nothing else.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from campaign.errors import InputError
from campaign.spec.cache_load import parse_cache
from campaign.spec.capacity import CAPACITY_KEYS, CapacityProblem, check_amounts, parse_amount
from campaign.spec.cluster_load import check_services, on_key, parse_cluster, parse_services
from campaign.spec.matrix import parse_matrix
from campaign.spec.model import CampaignSpec, Requirements, Stage, is_inside_output_dir
from campaign.spec.scale import canonical_sf
from campaign.spec.validate import Problems, check_campaign
from campaign.spec.yamlmarks import LocatedDict, load_located_yaml

KINDS = ("build", "data", "bench", "validate", "test")
CAMPAIGN_KEYS = {
    "name",
    "description",
    "scale_factors",
    "default_selection",
    "vars",
    "stages",
    "cluster",
    "services",
    "matrix",
}
STAGE_KEYS = {
    "name",
    "description",
    "kind",
    "run",
    "per",
    "needs",
    "produces",
    "uses",
    "incremental",
    "timeout",
    "retries",
    "requires",
    "upload",
    "features",
    "ci_overlap",
    "build_output",
    "on",
    "cache",
    "cache_inputs",
}
REQUIRES_KEYS = {"cpu_flags", *CAPACITY_KEYS}
STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FEATURE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_+./-]*$")  # cargo's, plus `crate/feature`
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def load_campaign(path: Path) -> CampaignSpec:
    """Read and validate a campaign file; InputError lists every problem with file:line."""
    document, raw = load_located_yaml(path)
    problems = Problems(path)
    if not isinstance(document, LocatedDict):
        raise InputError(f"{path}:1: a campaign file is a mapping with name, scale_factors and stages.")
    _check_keys(document, CAMPAIGN_KEYS, "the campaign", problems)
    name = _require_str(document, "name", "the campaign", problems)
    scale_factors = _parse_scale_factors(document, problems)
    spec_vars = document.get("vars") or {}
    if not isinstance(spec_vars, dict):
        problems.add(document.line_of("vars"), "vars must be a mapping of names to values.")
        spec_vars = {}
    stages = _parse_stages(document, problems)
    cluster = parse_cluster(document, problems)
    services = parse_services(document, problems, parse_duration)
    check_services(cluster, services, dict(spec_vars), problems, services_line=document.line_of("services"))
    _check_on_needs_cluster(cluster, stages, problems)
    _check_capacity(stages, scale_factors, dict(spec_vars), problems)
    matrix_instance_types = parse_matrix(document, problems)
    default_selection = str(document.get("default_selection") or (f"sf{scale_factors[0]}" if scale_factors else ""))
    problems.raise_if_any()
    spec = CampaignSpec(
        name=name,
        path=path,
        scale_factors=scale_factors,
        default_selection=default_selection,
        vars=dict(spec_vars),
        stages=tuple(stages),
        digest=hashlib.sha256(raw).hexdigest(),
        cluster=cluster,
        services=services,
        matrix_instance_types=matrix_instance_types,
    )
    check_campaign(spec, problems, default_selection_line=document.line_of("default_selection"))
    return spec


def _check_keys(mapping: LocatedDict, allowed: set[str], where: str, problems: Problems) -> None:
    for key in mapping:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            problems.add(mapping.line_of(key), f"{where}: unknown key '{key}'. Allowed keys: {hint}.")


def _require_str(mapping: LocatedDict, key: str, where: str, problems: Problems) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.add(mapping.line_of(key), f"{where}: '{key}' is required and must be a non-empty string.")
        return ""
    return value


def _parse_scale_factors(document: LocatedDict, problems: Problems) -> tuple[str, ...]:
    values = document.get("scale_factors")
    line = document.line_of("scale_factors")
    if not isinstance(values, list) or not values:
        problems.add(line, "scale_factors must be a non-empty list such as [0.01, 1, 10].")
        return ()
    canonical = []
    for value in values:
        try:
            sf = canonical_sf(str(value))
        except ValueError as err:
            problems.add(line, f"scale_factors: {err}")
            continue
        if sf in canonical:
            problems.add(line, f"scale_factors: {sf} is listed twice.")
        canonical.append(sf)
    return tuple(canonical)


def _parse_stages(document: LocatedDict, problems: Problems) -> list[Stage]:
    entries = document.get("stages")
    if not isinstance(entries, list) or not entries:
        problems.add(document.line_of("stages"), "stages must be a non-empty list of stages.")
        return []
    stages: list[Stage] = []
    first_line: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, LocatedDict):
            problems.add(document.line_of("stages"), "each entry of stages must be a mapping with name and run.")
            continue
        stage = _parse_stage(on_key(entry), problems)
        if stage.name in first_line:
            problems.add(
                entry.line_of("name"),
                f"stage '{stage.name}': the name is already used by the stage "
                f"at line {first_line[stage.name]}. Stage names must be unique; rename one.",
            )
            continue
        first_line[stage.name] = entry.line_of("name")
        stages.append(stage)
    return stages


def _parse_stage(entry: LocatedDict, problems: Problems) -> Stage:
    raw_name = entry.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    where = f"stage '{name}'" if name else "a stage"
    _check_keys(entry, STAGE_KEYS, where, problems)
    if not STAGE_NAME.match(name):
        problems.add(
            entry.line_of("name"),
            f"{where}: name is required: letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (it names log files and store keys).",
        )
    kind, on, per = _check_choices(entry, where, problems)
    return Stage(
        name=name,
        kind=str(kind),
        line=entry.line,
        run=_require_str(entry, "run", where, problems),
        per_sf=per == "scale_factor",
        needs=_str_list(entry, "needs", where, problems),
        produces=_str_list(entry, "produces", where, problems),
        uses=_str_list(entry, "uses", where, problems),
        incremental=_optional_str(entry, "incremental", where, problems),
        timeout_s=_parse_timeout(entry, where, problems),
        retries=_parse_retries(entry, where, problems),
        requires=_parse_requires(entry, where, problems),
        upload=_parse_bool(entry, "upload", True, where, problems),
        description=str(entry.get("description") or ""),
        features=_parse_features(entry, where, problems),
        ci_overlap=_optional_str(entry, "ci_overlap", where, problems, what="a sentence: why CI cannot run it"),
        build_output=_parse_build_output(entry, kind, per, where, problems),
        on=str(on),
        cache=parse_cache(entry, where, problems),
    )


def _check_choices(entry: LocatedDict, where: str, problems: Problems) -> tuple[object, object, object]:
    """kind, on and per, each checked against the values it may take."""
    kind = entry.get("kind")
    if kind not in KINDS:
        problems.add(entry.line_of("kind"), f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    on = entry.get("on", "coordinator")
    if on not in ("coordinator", "all"):
        problems.add(
            entry.line_of("on"),
            f"{where}: on is coordinator (the default) or all (every node of the cluster, in parallel), not {on!r}.",
        )
    per = entry.get("per")
    if per not in (None, "scale_factor"):
        problems.add(entry.line_of("per"), f"{where}: per may only be 'scale_factor' (or left out), not {per!r}.")
    return kind, on, per


def _str_list(entry: LocatedDict, key: str, where: str, problems: Problems) -> tuple[str, ...]:
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.add(entry.line_of(key), f"{where}: {key} must be a list of strings.")
        return ()
    return tuple(value)


def _optional_str(
    entry: LocatedDict, key: str, where: str, problems: Problems, what: str = "a path string"
) -> str | None:
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        problems.add(entry.line_of(key), f"{where}: {key} must be {what}.")
        return None
    return value


def _parse_features(entry: LocatedDict, where: str, problems: Problems) -> tuple[str, ...]:
    features = _str_list(entry, "features", where, problems)
    bad = [f for f in features if not FEATURE_NAME.match(f)]
    if bad:
        problems.add(
            entry.line_of("features"),
            f"{where}: features {', '.join(map(repr, bad))} are not cargo "
            "feature names (letters, digits, '_', '-', '+', '.', or crate/feature).",
        )
    return tuple(dict.fromkeys(features))


def _parse_build_output(
    entry: LocatedDict, kind: object, per: object, where: str, problems: Problems
) -> tuple[str, ...]:
    paths = _str_list(entry, "build_output", where, problems)
    if not paths:
        return ()
    line = entry.line_of("build_output")
    if kind != "build":
        problems.add(
            line,
            f"{where}: build_output belongs on the stage of kind build (it is what "
            f"`campaign prebuild` packs); this stage is of kind {kind!r}.",
        )
    if per is not None:
        problems.add(
            entry.line_of("per"), f"{where}: a stage with build_output builds once per commit; remove per: {per}."
        )
    for path in paths:
        if not is_inside_output_dir(path):
            problems.add(
                line,
                f"{where}: build_output {path!r} must be a relative path inside the checkout "
                "(e.g. target/release; no leading '/', no '..').",
            )
    return tuple(str(PurePosixPath(p)) for p in paths)


def _parse_bool(entry: LocatedDict, key: str, default: bool, where: str, problems: Problems) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        problems.add(entry.line_of(key), f"{where}: {key} must be true or false.")
        return default
    return value


def parse_duration(value: object) -> float:
    """'90s', '30m', '2h', '1h30m' or a number of seconds -> seconds (> 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 30m, 2h or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError("a timeout must be longer than 0s")
    return float(total)


def _parse_timeout(entry: LocatedDict, where: str, problems: Problems) -> float | None:
    if "timeout" not in entry:
        return None
    try:
        return parse_duration(entry["timeout"])
    except ValueError as err:
        problems.add(entry.line_of("timeout"), f"{where}: timeout: {err}.")
        return None


def _parse_retries(entry: LocatedDict, where: str, problems: Problems) -> int:
    value = entry.get("retries", 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10:
        problems.add(entry.line_of("retries"), f"{where}: retries must be a whole number from 0 to 10.")
        return 0
    return value


def _parse_requires(entry: LocatedDict, where: str, problems: Problems) -> Requirements:
    value = entry.get("requires")
    if value is None:
        return Requirements()
    if not isinstance(value, LocatedDict):
        problems.add(entry.line_of("requires"), f"{where}: requires must be a mapping, e.g. cpu_flags: [avx512f].")
        return Requirements()
    _check_keys(value, REQUIRES_KEYS, f"{where}: requires", problems)
    flags = _str_list(value, "cpu_flags", f"{where}: requires", problems)
    amounts: dict[str, float | str | None] = {}
    for key in CAPACITY_KEYS:
        try:
            amounts[key] = parse_amount(value.get(key))
        except CapacityProblem as err:
            problems.add(value.line_of(key), f"{where}: requires.{key} {err}.")
    return Requirements(cpu_flags=tuple(f.lower() for f in flags), **amounts)


def _check_on_needs_cluster(cluster: object, stages: list[Stage], problems: Problems) -> None:
    if cluster is not None:
        return
    for stage in stages:
        if stage.on != "coordinator":
            problems.add(
                stage.line,
                f"stage '{stage.name}': on: {stage.on} needs a cluster; add cluster: {{nodes: N}} or remove on.",
            )


def _check_capacity(stages: list[Stage], sfs: tuple[str, ...], variables: dict, problems: Problems) -> None:
    """Each capacity template renders to a number of GB at every scale factor its stage runs at."""
    for stage in stages:
        amounts = {"disk_gb": stage.requires.disk_gb, "memory_gb": stage.requires.memory_gb}
        for problem in check_amounts(amounts, sfs if stage.per_sf else (None,), variables):
            problems.add(stage.line, f"stage '{stage.name}': {problem}.")
