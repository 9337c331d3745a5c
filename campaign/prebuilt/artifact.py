"""Prebuilt builds in the store: prebuilt/<commit>/<arch>/<digest>/target.tar.gz, .sha256 and target.json.

target.json is written last and marks the prebuilt as complete: a prebuild that died mid-upload
leaves no target.json, so nobody fetches its half, and the next prebuild replaces it. A fetch trusts
nothing it has not checked: the tarball's SHA-256, computed here, must equal both the .sha256 object
and target.json; the build must be of this campaign file's build definition and this machine's
architecture; and extraction refuses any member that would land outside the declared build output.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import posixpath
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rich.filesize import decimal

from campaign.errors import CampaignError, InputError, NotInStore, StoreError
from campaign.planning.plan import Plan, with_build_source
from campaign.spec.model import CampaignSpec, Stage, template_context
from campaign.spec.templating import render
from campaign.store import Store, open_store
from campaign.store.files import sha256_of
from campaign.ui.tables import duration_text

PREFIX = "prebuilt"
TARBALL, CHECKSUM, METADATA = "target.tar.gz", "target.tar.gz.sha256", "target.json"
LATEST = f"{PREFIX}/latest.json"  # the newest prebuild's commit and build time: the estimate for a cold build
FORMAT = 1
GZIP_LEVEL = 6  # tarfile's default 9 costs twice the time for a few percent on binaries
GiB = 1024**3
# A real Rust target/release (a workspace with tests and deps) is a few GiB in tens of thousands of files.
MAX_BYTES_VARIABLE, MAX_MEMBERS_VARIABLE = "CAMPAIGN_PREBUILT_MAX_BYTES", "CAMPAIGN_PREBUILT_MAX_MEMBERS"
DEFAULT_MAX_BYTES, DEFAULT_MAX_MEMBERS = 20 * GiB, 200_000


class PrebuiltRejected(CampaignError):
    """A prebuilt that must not be used; the message says why. The build stage then builds."""


TOOLCHAIN_FILES = ("rust-toolchain.toml", "rust-toolchain", "Cargo.lock")
DIGEST_IN_KEY = 16  # hex characters of the build digest in the key (64 bits: no accidental collision)


def key(commit: str, name: str, digest: str, arch: str | None = None) -> str:
    """prebuilt/<commit>/<arch>/<digest>/<name>: each architecture and each build definition (command, features,
    toolchain file, Cargo.lock) of a commit has its own prebuilt; none can be taken for another's."""
    return f"{PREFIX}/{commit}/{arch or this_arch()}/{digest[:DIGEST_IN_KEY]}/{name}"


def build_digest(spec: CampaignSpec, stage: Stage) -> str:
    """What the build is: its rendered command, its output, its features, and the repository's toolchain file and
    Cargo.lock (by content). A prebuilt of another definition is not ours."""
    context = template_context(
        spec, stage=stage.name, sf=None, run_id="PREBUILD", output_dir="/OUTPUT", work_dir="/WORK"
    )
    root = repository_root(spec.path)
    definition = {
        "run": render(stage.run, context),
        "build_output": list(stage.build_output),
        "features": list(spec.features),
        "toolchain": {
            name: hashlib.sha256((root / name).read_bytes()).hexdigest() if (root / name).is_file() else None
            for name in TOOLCHAIN_FILES
        },
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def repository_root(path: Path) -> Path:
    """The checkout holding the campaign file (the nearest folder up with a .git), else the file's folder."""
    start = path.resolve().parent
    return next((folder for folder in (start, *start.parents) if (folder / ".git").exists()), start)


def this_arch() -> str:
    return platform.machine()


@dataclass(frozen=True)
class Lookup:
    """Whether the build stage can fetch instead of build, and why (one sentence)."""

    usable: bool
    reason: str
    metadata: dict | None = None


def lookup(store: Store, spec: CampaignSpec, commit: str | None, *, dirty: bool = False) -> Lookup:
    """Is there a prebuilt of commit for this campaign's build stage, for this machine? (one GET, no download)"""
    stage = spec.build_stage
    if stage is None:
        return Lookup(False, "the campaign has no stage with build_output")
    if commit is None or dirty:
        return Lookup(False, "the run uses uncommitted files, which no prebuilt contains")
    digest = build_digest(spec, stage)
    where = store.where(key(commit, "", digest))
    try:
        metadata = read_metadata(store, commit, digest)
    except StoreError:  # absent is None; a store that cannot say also means build here
        metadata = None
    except PrebuiltRejected as err:
        return Lookup(False, str(err))
    if metadata is None:
        return Lookup(False, f"no prebuilt build of commit {commit[:12]} in {where}")
    problem = _incompatibility(metadata, digest)
    if problem:
        return Lookup(False, f"the prebuilt in {where} {problem}", metadata)
    size = metadata.get("tarball", {}).get("size", 0)
    return Lookup(
        True,
        f"{store.where(key(commit, TARBALL, digest))} ({decimal(size)}, built "
        f"{metadata.get('created_at', '?')} in {duration_text(metadata.get('build_seconds'))})",
        metadata,
    )


def read_metadata(store: Store, commit: str, digest: str) -> dict | None:
    """commit's target.json, or None when there is none; PrebuiltRejected when it is not JSON or not the shape
    `campaign prebuild` writes."""
    try:
        metadata = json.loads(store.get_bytes(key(commit, METADATA, digest)))
    except NotInStore:
        return None
    except ValueError as err:
        raise PrebuiltRejected(f"{store.where(key(commit, METADATA, digest))} is not valid JSON ({err})") from None
    problem = _shape_problem(metadata)
    if problem:
        raise PrebuiltRejected(f"{store.where(key(commit, METADATA, digest))} is damaged: {problem}")
    return metadata


def _shape_problem(metadata: object) -> str | None:
    """What makes metadata unlike the target.json `campaign prebuild` writes (absent fields are judged later)."""
    if not isinstance(metadata, dict):
        return f"a JSON {type(metadata).__name__}, not an object"
    tarball = metadata.get("tarball") or {}  # absent or null: judged by _incompatibility
    if not isinstance(tarball, dict) or not isinstance(tarball.get("sha256", ""), str):
        return "its tarball is not {size, sha256}"
    features = metadata.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        return "its features are not a list of names"
    if not isinstance(metadata.get("build_seconds", 0), (int, float)):
        return "its build_seconds is not a number"
    return None


def last_prebuild(store: Store) -> tuple[str, float | None] | None:
    """(commit, build seconds) of the newest prebuild in store, from latest.json; None when absent or unreadable."""
    try:
        latest = json.loads(store.get_bytes(LATEST))
    except (StoreError, ValueError):
        return None
    if not isinstance(latest, dict):
        return None
    seconds = latest.get("build_seconds")
    return str(latest.get("commit"))[:12], seconds if isinstance(seconds, (int, float)) else None


def _incompatibility(metadata: dict, digest: str) -> str | None:
    if metadata.get("format") != FORMAT:
        return f"has format {metadata.get('format')!r}; this campaign reads format {FORMAT}"
    tarball = metadata.get("tarball")
    if not isinstance(tarball, dict) or not tarball.get("sha256") or not isinstance(tarball.get("size"), int):
        return f"has a {METADATA} that records no tarball size and sha256"
    if metadata.get("build_digest") != digest:
        return (
            f"was built from another build definition (campaign file {metadata.get('campaign_file')}, "
            f"stage {metadata.get('build_stage')}, features {','.join(metadata.get('features', [])) or 'none'})"
        )
    if metadata.get("arch") != this_arch():
        return f"was built for {metadata.get('arch')}; this machine is {this_arch()}"
    return None


@dataclass(frozen=True)
class Fetched:
    key: str
    size: int
    sha256: str
    members: int
    seconds: float


def fetch(
    store: Store, commit: str, found: Lookup, checkout: Path, scratch: Path, build_output: tuple[str, ...]
) -> Fetched:
    """Download, verify and extract the prebuilt into checkout.

    PrebuiltRejected, with nothing extracted, when any check fails.
    """
    started = time.monotonic()
    tarball = scratch / TARBALL
    if found.metadata is None:  # lookup() says usable only with metadata; a caller that skipped it gets this
        raise PrebuiltRejected("no target.json was looked up for this prebuilt; look it up before fetching")
    digest = str(found.metadata.get("build_digest", ""))
    try:
        store.download(key(commit, TARBALL, digest), tarball)
        listed = store.get_bytes(key(commit, CHECKSUM, digest)).decode("ascii", "replace").split()
    except StoreError as err:
        raise PrebuiltRejected(f"could not download the prebuilt: {err}") from None
    tarball_record = found.metadata["tarball"]
    try:
        actual = sha256_of(tarball)
        recorded = {listed[0] if listed else "(empty)", tarball_record["sha256"]}
        if recorded != {actual}:
            raise PrebuiltRejected(
                f"{store.where(key(commit, TARBALL, digest))} has sha256 {actual}, but {CHECKSUM} and {METADATA} say "
                f"{' / '.join(sorted(recorded))}: it is corrupt or was replaced; it was not extracted"
            )
        members = extract(tarball, checkout, build_output)
    finally:
        tarball.unlink(missing_ok=True)
    return Fetched(key(commit, TARBALL, digest), tarball_record["size"], actual, members, time.monotonic() - started)


@dataclass(frozen=True)
class ExtractionLimits:
    """How much a prebuilt may expand to: total uncompressed bytes and number of members."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS

    @classmethod
    def from_environment(cls) -> ExtractionLimits:
        return cls(
            _positive_int(MAX_BYTES_VARIABLE, DEFAULT_MAX_BYTES),
            _positive_int(MAX_MEMBERS_VARIABLE, DEFAULT_MAX_MEMBERS),
        )


def _positive_int(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise InputError(f"${variable}={text!r} must be a whole number greater than 0 (default {default}).")
    return int(text)


def pack(checkout: Path, build_output: tuple[str, ...], tarball: Path) -> int:
    """Pack build_output (relative to checkout) into a gzipped tarball; returns the number of members."""

    def portable(member: tarfile.TarInfo) -> tarfile.TarInfo:
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        return member

    with tarfile.open(tarball, "w:gz", compresslevel=GZIP_LEVEL) as archive:
        for path in build_output:
            archive.add(checkout / path, arcname=path, filter=portable)  # directories recurse in sorted order
        return len(archive.getmembers())


def extract(
    tarball: Path, checkout: Path, build_output: tuple[str, ...], limits: ExtractionLimits | None = None
) -> int:
    """Extract into checkout, all or nothing; refuse members, or links, that lead outside build_output,
    and archives that expand beyond the limits (default: from the environment, else 20 GiB / 200 000 members).

    Every member is checked before anything is written, and the archive is extracted into a staging
    folder beside the checkout that replaces each build_output path only when all of it is out.
    """
    limits = limits or ExtractionLimits.from_environment()
    staging = checkout.parent / f".prebuilt-staging-{checkout.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            members = _checked_members(archive, build_output, limits)
            archive.extractall(staging, members=members, filter="data")
        for root in build_output:
            _move_into_place(staging / root, checkout / root)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise PrebuiltRejected(f"the prebuilt could not be extracted: {err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(members)


def _checked_members(
    archive: tarfile.TarFile, build_output: tuple[str, ...], limits: ExtractionLimits
) -> list[tarfile.TarInfo]:
    """Read the archive's headers one by one (nothing is written), stopping at the first member past a limit."""
    roots = [PurePosixPath(p) for p in build_output]
    total = 0
    for count, member in enumerate(archive, start=1):
        total += member.size if member.isfile() else 0
        if count > limits.max_members or total > limits.max_bytes:
            raise PrebuiltRejected(
                f"the prebuilt expands to more than {limits.max_members} members or {decimal(limits.max_bytes)} "
                f"(at member {count}, {member.name}: {decimal(total)} so far); nothing was extracted. A real "
                f"build that large: raise ${MAX_BYTES_VARIABLE} / ${MAX_MEMBERS_VARIABLE}"
            )
        _check_member(member, roots, build_output)
    return archive.getmembers()


def _check_member(member: tarfile.TarInfo, roots: list[PurePosixPath], build_output: tuple[str, ...]) -> None:
    where = [(member.name, member.name)]
    if member.issym():
        where.append((posixpath.join(posixpath.dirname(member.name), member.linkname), member.linkname))
    elif member.islnk():
        where.append((member.linkname, member.linkname))
    for path, shown in where:
        normal = PurePosixPath(posixpath.normpath(path))
        inside = not posixpath.isabs(path) and any(normal == root or root in normal.parents for root in roots)
        if not inside or ".." in PurePosixPath(member.name).parts:
            raise PrebuiltRejected(
                f"the prebuilt's member {member.name} leads to {shown}, outside the declared "
                f"build_output {', '.join(build_output)}; nothing was extracted"
            )


def _move_into_place(staged: Path, dest: Path) -> None:
    if not staged.exists():
        return
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)  # build products of an earlier build in this checkout, never results
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staged, dest)


def checksum_line(sha256: str) -> bytes:
    """The .sha256 object, in `sha256sum -c` format."""
    return f"{sha256}  {TARBALL}\n".encode()


def plan_build_source(plan: Plan, store_url: str) -> Plan:
    """Say in the plan whether the build stage will fetch the commit's prebuilt from store_url or compile."""
    if plan.spec.build_stage is None:
        return plan  # no store is opened: a plan without a build stays fast
    found = lookup(open_store(store_url), plan.spec, plan.commit, dirty=plan.dirty)
    return with_build_source(plan, found, store_url)
