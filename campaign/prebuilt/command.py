"""`campaign prebuild`: build once, off the paid machine, and store the build for every run of the commit.

In a clean checkout of HEAD (a fresh clone; with --in-place the repository itself, when git says it
is clean: in CI, where the cargo cache lives), run the build stage, pack its build_output and store
prebuilt/<commit>/<arch>/<digest>/target.tar.gz, its .sha256 and target.json (last, only if absent), each verified.
Idempotent: a complete prebuilt of the same build definition is checked and kept; nothing complete
is ever overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.filesize import decimal

import campaign.prebuilt.artifact as prebuilt
from campaign.errors import Conflict, InputError, PreflightRefused, StageFailed
from campaign.run.dirs import default_store, state_dir_for
from campaign.spec.load import load_campaign
from campaign.spec.model import CampaignSpec, Stage, template_context
from campaign.spec.templating import render
from campaign.store import Store, open_store
from campaign.system.checkout import prepare_checkout
from campaign.system.clock import now_iso
from campaign.system.git import find_root, git, head_commit
from campaign.system.process import run_logged
from campaign.ui.tables import duration_text

Out = Callable[[str], None]


@dataclass(frozen=True)
class PrebuildOptions:
    campaign_file: Path
    store: str | None = None
    in_place: bool = False
    state_dir: Path | None = None


def prebuild(options: PrebuildOptions, *, out: Out = print) -> None:
    """Build, pack and store the commit's prebuilt, or say why nothing needs doing.

    Raises what decides the exit code.
    """
    spec = load_campaign(options.campaign_file.resolve())
    root = find_root(spec.path.parent)
    stage = spec.build_stage
    if stage is None:
        out(
            f"nothing to build: {spec.path.name} has no stage with build_output, so there is no prebuilt to "
            "store. Nothing was uploaded."
        )
        return
    commit = head_commit(root)
    if commit is None:
        raise InputError(f"{root} has no commit yet; a prebuilt is stored per commit. Commit first.")
    store = open_store(options.store or default_store(root))
    out(
        f"prebuild: commit {commit} · campaign {spec.name} · stage {stage.name} · "
        f"features {','.join(spec.features) or 'none'}"
    )
    if _already_stored(store, spec, stage, commit, out=out):
        return
    state = state_dir_for(root, options.state_dir) / "prebuild"
    if options.in_place:
        _require_clean(root)
    checkout = root if options.in_place else _fresh_checkout(root, commit, state)
    seconds = _build(spec, stage, checkout, state / f"{commit[:12]}.log", out=out)
    with tempfile.TemporaryDirectory(prefix="campaign-prebuild-") as scratch:
        tarball = Path(scratch) / prebuilt.TARBALL
        members = prebuilt.pack(checkout, stage.build_output, tarball)
        out(f"packed {', '.join(stage.build_output)}: {members} entries, {decimal(tarball.stat().st_size)}")
        metadata = _store(store, spec, stage, commit, tarball, seconds, root, checkout, out=out)
    if not options.in_place:
        shutil.rmtree(checkout)  # the build is in the store; the clone's target/ is gigabytes of nothing
    out(
        f"stored {store.where(prebuilt.key(commit, prebuilt.TARBALL, metadata['build_digest']))} "
        f"(sha256 {metadata['tarball']['sha256']}), verified"
    )


def _already_stored(store: Store, spec: CampaignSpec, stage: Stage, commit: str, *, out: Out) -> bool:
    """True when a complete, verified prebuilt of this definition is there; Conflict when another one is."""
    digest = prebuilt.build_digest(spec, stage)
    where = store.where(prebuilt.key(commit, "", digest))
    try:
        metadata = prebuilt.read_metadata(store, commit, digest)
    except prebuilt.PrebuiltRejected as err:
        raise Conflict(
            f"{err}: the prebuilt in {where} is not usable and is not overwritten. If this one "
            f"should replace it, remove it first ({_removal_hint(store, commit, digest)}) and run "
            "`campaign prebuild` again."
        ) from None
    if metadata is None:
        return False
    remove = (
        f"If this one should replace it, remove it first ({_removal_hint(store, commit, digest)}) and run "
        "`campaign prebuild` again."
    )
    if metadata.get("build_digest") != prebuilt.build_digest(spec, stage):
        raise Conflict(
            f"{where} already holds a prebuilt of another build definition (campaign file "
            f"{metadata.get('campaign_file')}, stage {metadata.get('build_stage')}); it is not "
            f"overwritten. {remove}"
        )
    recorded = metadata.get("tarball", {})
    stored = store.stat(prebuilt.key(commit, prebuilt.TARBALL, digest))
    if stored is None or (stored.size, stored.sha256) != (recorded.get("size"), recorded.get("sha256")):
        found = "missing" if stored is None else f"{stored.size} bytes, sha256 {stored.sha256}"
        raise Conflict(
            f"{where}{prebuilt.TARBALL} does not match its {prebuilt.METADATA} (store: {found}; "
            f"recorded: {recorded.get('size')} bytes, sha256 {recorded.get('sha256')}). Runs will "
            f"build instead of fetching it. {remove}"
        )
    out(f"already stored: {where} holds this commit's prebuilt (sha256 {recorded['sha256']} verified); nothing to do")
    return True


def _removal_hint(store: Store, commit: str, digest: str) -> str:
    where = store.where(prebuilt.key(commit, "", digest))
    return f"aws s3 rm --recursive {where}" if where.startswith("s3://") else f"rm -r {where}"


def _fresh_checkout(root: Path, commit: str, state: Path) -> Path:
    if _uncommitted(root):
        print(
            f"prebuild: the working tree has uncommitted changes; they are NOT in the prebuild, which builds "
            f"commit {commit[:12]} as committed.",
            file=sys.stderr,
        )
    checkout = state / f"{commit[:12]}-{now_iso().replace(':', '')}"
    prepare_checkout(root, commit, checkout, dirty=False)
    return checkout


def _uncommitted(root: Path) -> list[str]:
    """`git status --porcelain` lines: modified and untracked files (ignored ones, such as target/, do not count)."""
    return git(root, "status", "--porcelain", "--untracked-files=normal").splitlines()


def _require_clean(root: Path) -> None:
    changes = _uncommitted(root)
    if changes:
        shown = "\n  ".join(changes[:20]) + ("\n  …" if len(changes) > 20 else "")
        raise PreflightRefused(
            f"--in-place builds in {root} itself, which must be a clean checkout of HEAD, and git reports:\n  {shown}\n"
            "Commit or remove these (build output such as target/ belongs in .gitignore), or drop --in-place "
            "to build in a fresh clone."
        )


def _build(spec: CampaignSpec, stage: Stage, checkout: Path, log_path: Path, *, out: Out) -> float:
    with tempfile.TemporaryDirectory(prefix="campaign-prebuild-out-") as output_dir:
        context = template_context(
            spec,
            stage=stage.name,
            sf=None,
            run_id=f"prebuild-{checkout.name}",
            output_dir=output_dir,
            work_dir=str(checkout),
        )
        command = render(stage.run, context)
        out(f"building in {checkout}: {command}")
        out(f"  log: {log_path}")
        log_path.unlink(missing_ok=True)
        env = {
            **os.environ,
            "CAMPAIGN_STAGE": stage.name,
            "CAMPAIGN_WORK_DIR": str(checkout),
            "CAMPAIGN_OUTPUT_DIR": output_dir,
            "CAMPAIGN_PREBUILD": "1",
        }
        result = run_logged(command, cwd=checkout, env=env, log_path=log_path, timeout_s=stage.timeout_s)
    if result.timed_out or result.exit_code != 0:
        sys.stderr.write(log_path.read_text(errors="replace"))  # all of it: CI shows nothing else
        what = "timed out" if result.timed_out else f"exited with code {result.exit_code}"
        raise StageFailed(
            f"the build stage '{stage.name}' {what}; its log is above and in {log_path}. Nothing was uploaded."
        )
    missing = [path for path in stage.build_output if not (checkout / path).exists()]
    if missing:
        raise StageFailed(
            f"the build stage '{stage.name}' exited 0 but did not produce {', '.join(missing)} "
            f"(its build_output) in {checkout}. Nothing was uploaded."
        )
    out(f"built in {duration_text(result.duration_s)}")
    return result.duration_s


def _metadata(
    spec: CampaignSpec, stage: Stage, commit: str, root: Path, checkout: Path, seconds: float, tarball: dict[str, Any]
) -> dict[str, Any]:
    """target.json: what the prebuilt is a build of, on what, and its tarball."""
    return {
        "format": prebuilt.FORMAT,
        "commit": commit,
        "campaign": spec.name,
        "campaign_file": spec.path.relative_to(root).as_posix(),
        "build_stage": stage.name,
        "build_digest": prebuilt.build_digest(spec, stage),
        "build_output": list(stage.build_output),
        "features": list(spec.features),
        "arch": prebuilt.this_arch(),
        **_toolchain(checkout),
        "created_at": now_iso(),
        "build_seconds": round(seconds, 3),
        "tarball": tarball,
    }


def _store(
    store: Store,
    spec: CampaignSpec,
    stage: Stage,
    commit: str,
    tarball: Path,
    seconds: float,
    root: Path,
    checkout: Path,
    *,
    out: Out,
) -> dict[str, Any]:
    """Tarball, then .sha256, then target.json (only if absent: it is what makes the prebuilt exist)."""
    digest = prebuilt.build_digest(spec, stage)
    artifact = store.put_file(tarball, prebuilt.key(commit, prebuilt.TARBALL, digest))
    store.put_bytes(prebuilt.checksum_line(artifact.sha256), prebuilt.key(commit, prebuilt.CHECKSUM, digest))
    metadata = _metadata(spec, stage, commit, root, checkout, seconds, artifact.to_dict())
    try:
        store.put_conditional(
            json.dumps(metadata, indent=2).encode() + b"\n",
            prebuilt.key(commit, prebuilt.METADATA, digest),
            expect=None,
        )
    except Conflict:
        stored = prebuilt.read_metadata(store, commit, digest)
        if _already_stored(store, spec, stage, commit, out=out) and stored is not None:  # another prebuild won
            return stored
        raise
    latest = {key: metadata[key] for key in ("arch", "build_seconds", "created_at")}
    store.put_bytes(json.dumps({"commit": commit, **latest}).encode() + b"\n", prebuilt.LATEST)
    return metadata


def _toolchain(checkout: Path) -> dict[str, Any]:
    """Target triple and toolchain versions, as the checkout's rust-toolchain would pick them (None without Rust)."""
    versions: dict[str, str | None] = {"rustc": None, "cargo": None}
    facts: dict[str, Any] = {"target_triple": None, "toolchain": versions}
    for tool in ("rustc", "cargo"):
        try:
            result = subprocess.run([tool, "-vV"], cwd=checkout, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode != 0:
            continue
        lines = result.stdout.splitlines()
        versions[tool] = lines[0] if lines else None
        for line in lines:
            if tool == "rustc" and line.startswith("host: "):
                facts["target_triple"] = line.removeprefix("host: ")
    return facts
