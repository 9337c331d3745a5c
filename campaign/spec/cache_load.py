"""`cache: true` and `cache_inputs` on a stage: parsed and checked strictly, each problem with its line.

A cached stage's outputs are stored once under `<store>/cache/<key>/` and fetched by later runs, so
everything its data depends on must be in the key: the rendered command, the SF, the versions of the
tools it names (`cache_inputs.tools`) and the repository files it reads (`cache_inputs.files`, plus
its `uses`). What the key cannot see is refused here: a build, an incremental file, needed stages'
outputs, and `{{ run_id }}` in the command.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from campaign.spec.model import CacheInputs, is_inside_output_dir
from campaign.spec.templating import names_in
from campaign.spec.validate import Problems
from campaign.spec.yamlmarks import LocatedDict

CACHE_INPUT_KEYS = ("tools", "files")
EXAMPLE = 'cache_inputs: {tools: ["tpchgen-cli --version"], files: ["stages/tpch/generate.sh"]}'


def parse_cache(entry: LocatedDict, where: str, problems: Problems) -> CacheInputs | None:
    """The stage's cache inputs when it declares `cache: true`, else None (problems collected)."""
    cache = entry.get("cache", False)
    if not isinstance(cache, bool):
        problems.add(entry.line_of("cache"), f"{where}: cache must be true or false, not {cache!r}.")
        return None
    if not cache:
        if "cache_inputs" in entry:
            problems.add(entry.line_of("cache_inputs"), f"{where}: cache_inputs needs cache: true on the stage.")
        return None
    for problem in _unfit(entry):
        problems.add(entry.line_of("cache"), f"{where}: cache: true {problem}")
    inputs = entry.get("cache_inputs")
    if not isinstance(inputs, LocatedDict):
        problems.add(
            entry.line_of("cache_inputs" if "cache_inputs" in entry else "cache"),
            f"{where}: cache: true needs cache_inputs, the tools and repository files the data depends on, "
            f"e.g. {EXAMPLE} (write files: [] and tools: [] when there are none).",
        )
        return None
    return _parse_inputs(inputs, where, problems)


def _unfit(entry: LocatedDict) -> list[str]:
    """Why this stage's outputs cannot be keyed by its inputs, one sentence each."""
    reasons = []
    if entry.get("kind") == "build" or "build_output" in entry:
        reasons.append("is for data stages; a build is shared through `campaign prebuild` instead.")
    if "incremental" in entry:
        reasons.append("cannot cache an incremental results file: results are measured, never reused.")
    if not entry.get("produces"):
        reasons.append("needs produces: the files the cache stores and later runs fetch.")
    if entry.get("needs"):
        reasons.append(
            "cannot be on a stage with needs: what the needed stages produce is not part of the cache key. "
            "Make the stage stand alone, or remove cache."
        )
    run = entry.get("run")
    if isinstance(run, str) and "run_id" in names_in(run):
        reasons.append(
            "cannot be on a command that uses {{ run_id }}: every run would have its own key. Remove run_id from run."
        )
    return reasons


def _parse_inputs(inputs: LocatedDict, where: str, problems: Problems) -> CacheInputs:
    for key in inputs:
        if key not in CACHE_INPUT_KEYS:
            problems.add(
                inputs.line_of(key),
                f"{where}: cache_inputs: unknown key '{key}'. Allowed keys: {', '.join(CACHE_INPUT_KEYS)}.",
            )
    tools, files = (_strings(inputs, key, where, problems) for key in CACHE_INPUT_KEYS)
    for path in files:
        if not is_inside_output_dir(path):
            problems.add(
                inputs.line_of("files"),
                f"{where}: cache_inputs.files {path!r} must be a path relative to the repository root "
                "(no leading '/', no '..').",
            )
    return CacheInputs(tools=tools, files=tuple(str(PurePosixPath(p)) if "*" not in p else p for p in files))


def _strings(inputs: LocatedDict, key: str, where: str, problems: Problems) -> tuple[str, ...]:
    value = inputs.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.add(inputs.line_of(key), f"{where}: cache_inputs.{key} must be a list of non-empty strings.")
        return ()
    return tuple(value)
