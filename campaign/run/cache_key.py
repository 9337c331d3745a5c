"""The key of a cached stage run (`cache: true`): what its data is, as a digest.

The key is the SHA-256 of: the stage's command rendered with the stand-in folders (so another run, another
machine or the other side of an A/B has the same one), its declared outputs, the scale factor, the output of
each `cache_inputs.tools` command (`tpchgen-cli --version`: the tool's version), and the SHA-256 of every
repository file in `cache_inputs.files` and `uses` (folders: every file under them but __pycache__).
Change any of them and the key changes, so a stale entry is never found.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import CampaignError
from campaign.planning.graph import StageRun
from campaign.spec.model import CampaignSpec
from campaign.store.files import sha256_of

KEY_FORMAT = 1
TOOL_TIMEOUT_S = 30.0
TOOL_OUTPUT_CHARS = 300  # a version line, not a log: what the manifest keeps of each tool's answer


class NoCacheKey(CampaignError):
    """The key could not be computed (a tool command hung, a listed file is missing): the stage generates."""


@dataclass(frozen=True)
class CacheKey:
    key: str  # 64 hex digits
    stage: str
    sf: str | None
    inputs: dict  # what went into the key (the command as its sha256: nothing secret is stored)


def cache_key(spec: CampaignSpec, run: StageRun, root: Path, *, path: str | None = None) -> CacheKey:
    """The key of run, a cached stage's run, with the repository files read under root (the run's checkout,
    or the repository for `plan`) and the tools found on path (default: the stages' PATH)."""
    stage = run.stage
    if stage.cache is None:
        raise NoCacheKey(f"stage '{stage.name}' does not declare cache: true")
    command = run.placeholder_command(spec)
    inputs = {
        "format": KEY_FORMAT,
        "command_sha256": hashlib.sha256(command.encode()).hexdigest(),
        "sf": run.sf,
        "produces": list(run.outputs(spec)),
        "tools": {tool: tool_version(tool, root, path or stages_path()) for tool in stage.cache.tools},
        "files": file_digests(root, stage.cache.files + stage.uses, stage.name),
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return CacheKey(key, stage.name, run.sf, inputs)


def stages_path() -> str:
    """PATH as a stage's command sees it: the interpreter running campaign first (campaign.agent.environment)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def tool_version(command: str, root: Path, path: str) -> str:
    """`exit N: <output>` of a cache_inputs.tools command (a tool that is missing gives its own answer)."""
    try:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=root,
            env={**os.environ, "PATH": path},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TOOL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise NoCacheKey(
            f"cache_inputs.tools {command!r} did not finish in {TOOL_TIMEOUT_S:.0f}s; it must print a version "
            "and exit (e.g. `tpchgen-cli --version`)"
        ) from None
    return f"exit {done.returncode}: {(done.stdout + done.stderr).strip()[:TOOL_OUTPUT_CHARS]}"


def file_digests(root: Path, listed: tuple[str, ...], stage: str) -> dict[str, str]:
    """relative path -> sha256 of each file of listed (files, folders, globs) under root; NoCacheKey for a
    listed path that matches nothing."""
    digests = {}
    for pattern in listed:
        matches = sorted(root.glob(pattern)) if any(ch in pattern for ch in "*?[") else [root / pattern]
        found = [file for match in matches for file in _files(match)]
        if not found:
            raise NoCacheKey(
                f"stage '{stage}': cache_inputs.files / uses {pattern!r} matches no file in {root}; "
                "fix the path in the campaign file (relative to the repository root)"
            )
        digests.update({file.relative_to(root).as_posix(): sha256_of(file) for file in found})
    return dict(sorted(digests.items()))


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [path] if path.is_file() else []
