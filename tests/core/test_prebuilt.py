"""Prebuilt builds in a real folder store: pack and extract, lookup, a verified fetch, and the plan's build source.

Everything here is real: files on disk, gzipped tarballs made by tarfile, a LocalStore folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

import campaign.prebuilt.artifact as prebuilt
from campaign.planning.plan import with_build_source
from campaign.prebuilt.artifact import plan_build_source as add_build_source
from campaign.preflight.planner import make_plan
from campaign.spec.load import load_campaign
from campaign.store.local import LocalStore
from tests.core.conftest import git, make_repo

SCENARIOS = Path(__file__).parent / "scenarios" / "build"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OUTPUT = ("target/release",)
FILES = {  # a build's products, relative to the checkout
    "target/release/bench": b"\x7fELF" + bytes(range(256)) * 8,
    "target/release/deps/libcore-1a2b.rlib": b"rlib " * 1000,
    "target/release/.fingerprint/core-1a2b/lib-core": b"fingerprint\n",
    "target/release/build/empty-dir-sibling.txt": b"",
}


def write_build(checkout: Path) -> Path:
    """A checkout with build products under target/release, and sources that are not build output."""
    for relative, data in FILES.items():
        path = checkout / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (checkout / "target/release/bench").chmod(0o755)
    (checkout / "target/release/incremental").mkdir()  # an empty folder is part of the build too
    (checkout / "src").mkdir()
    (checkout / "src/main.rs").write_text("fn main() {}\n")
    (checkout / "target/debug").mkdir()
    (checkout / "target/debug/not-ours").write_bytes(b"debug build")
    return checkout


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def everything_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def handmade_tarball(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A gzipped tarball with exactly these regular-file members (names written as given)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def digest_of(spec) -> str:
    return prebuilt.build_digest(spec, spec.build_stage)


@pytest.fixture
def spec():
    return load_campaign(SCENARIOS / "no_overlap.yaml")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def store_prebuilt(store: LocalStore, spec, commit: str, checkout: Path, scratch: Path, **overrides) -> dict:
    """Store commit's prebuilt as `campaign prebuild` does: tarball, then .sha256, then target.json (last)."""
    stage = spec.build_stage
    scratch.mkdir(parents=True, exist_ok=True)
    tarball = scratch / "packed.tar.gz"
    prebuilt.pack(checkout, stage.build_output, tarball)
    artifact = store.put_file(tarball, prebuilt.key(commit, prebuilt.TARBALL, digest_of(spec)))
    store.put_bytes(prebuilt.checksum_line(artifact.sha256), prebuilt.key(commit, prebuilt.CHECKSUM, digest_of(spec)))
    metadata = {
        "format": prebuilt.FORMAT,
        "commit": commit,
        "campaign": spec.name,
        "campaign_file": spec.path.name,
        "build_stage": stage.name,
        "build_digest": prebuilt.build_digest(spec, stage),
        "build_output": list(stage.build_output),
        "features": list(spec.features),
        "arch": prebuilt.this_arch(),
        "created_at": "2024-05-01T12:00:00Z",
        "build_seconds": 754.2,
        "tarball": artifact.to_dict(),
        **overrides,
    }
    store.put_bytes(json.dumps(metadata).encode(), prebuilt.key(commit, prebuilt.METADATA, digest_of(spec)))
    return metadata


# --- pack and extract ---------------------------------------------------------------------------------------


def test_pack_then_extract_restores_the_build_output_byte_for_byte(tmp_path: Path):
    checkout = write_build(tmp_path / "built")
    tarball = tmp_path / "target.tar.gz"
    packed = prebuilt.pack(checkout, OUTPUT, tarball)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    extracted = prebuilt.extract(tarball, fresh, OUTPUT)
    assert extracted == packed
    restored = files_under(fresh)
    assert restored == FILES  # every file, same bytes; nothing outside build_output (src/, target/debug)
    assert (fresh / "target/release/incremental").is_dir()
    assert stat.S_IMODE((fresh / "target/release/bench").stat().st_mode) & 0o100, "the binary stays executable"
    with tarfile.open(tarball) as archive:
        assert {(m.uid, m.gid, m.uname, m.gname) for m in archive.getmembers()} == {(0, 0, "", "")}


def test_pack_of_several_outputs_restores_each(tmp_path: Path):
    checkout = write_build(tmp_path / "built")
    (checkout / "bin").mkdir()
    (checkout / "bin/tool").write_bytes(b"tool")
    tarball = tmp_path / "t.tar.gz"
    prebuilt.pack(checkout, ("target/release", "bin/tool"), tarball)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    prebuilt.extract(tarball, fresh, ("target/release", "bin/tool"))
    assert files_under(fresh) == {**FILES, "bin/tool": b"tool"}


@pytest.mark.parametrize(
    "outside", ["src/main.rs", "../evil", "/tmp/absolute-evil", "target/releases/x", "target/debug/x"]
)
def test_extract_refuses_a_member_outside_build_output_and_writes_nothing(tmp_path: Path, outside: str):
    tarball = handmade_tarball(tmp_path / "t.tar.gz", [("target/release/ok", b"fine"), (outside, b"evil")])
    checkout = tmp_path / "area" / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "src/main.rs").write_bytes(b"fn main() {}\n")
    before_area = everything_under(tmp_path)
    with pytest.raises(prebuilt.PrebuiltRejected, match="outside the declared build_output target/release"):
        prebuilt.extract(tarball, checkout, OUTPUT)
    assert everything_under(tmp_path) == before_area  # not even the allowed member was written
    assert (checkout / "src/main.rs").read_bytes() == b"fn main() {}\n"
    assert not Path("/tmp/absolute-evil").exists()


def test_extract_of_a_file_that_is_no_tarball_is_rejected(tmp_path: Path):
    bogus = tmp_path / "t.tar.gz"
    bogus.write_bytes(b"this is not gzip")
    with pytest.raises(prebuilt.PrebuiltRejected, match="could not be extracted"):
        prebuilt.extract(bogus, tmp_path / "checkout", OUTPUT)


def test_extract_refuses_a_symlink_that_leads_outside_build_output(tmp_path: Path):
    tarball = tmp_path / "t.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        link = tarfile.TarInfo("target/release/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../src"
        archive.addfile(link)
        payload = tarfile.TarInfo("target/release/link/main.rs")
        payload.size = 4
        archive.addfile(payload, io.BytesIO(b"evil"))
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "src/main.rs").write_bytes(b"fn main() {}\n")
    with pytest.raises(prebuilt.PrebuiltRejected, match="link"):
        prebuilt.extract(tarball, checkout, OUTPUT)
    assert (checkout / "src/main.rs").read_bytes() == b"fn main() {}\n"


def test_extract_refuses_dot_dot_inside_a_member_name(tmp_path: Path):
    tarball = tmp_path / "t.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        folder = tarfile.TarInfo("target")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        payload = tarfile.TarInfo("target/../src/main.rs")
        payload.size = 4
        archive.addfile(payload, io.BytesIO(b"evil"))
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "src/main.rs").write_bytes(b"fn main() {}\n")
    with pytest.raises(prebuilt.PrebuiltRejected, match=r"\.\."):
        prebuilt.extract(tarball, checkout, ("target",))
    assert (checkout / "src/main.rs").read_bytes() == b"fn main() {}\n"


def test_extract_rejected_by_the_data_filter_leaves_nothing_behind(tmp_path: Path):
    tarball = tmp_path / "t.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        first = tarfile.TarInfo("target/release/first")
        first.size = 5
        archive.addfile(first, io.BytesIO(b"first"))
        link = tarfile.TarInfo("target/release/abs")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    with pytest.raises(prebuilt.PrebuiltRejected):
        prebuilt.extract(tarball, checkout, OUTPUT)
    assert everything_under(checkout) == []


# --- lookup -------------------------------------------------------------------------------------------------


def test_lookup_without_a_prebuilt_says_so_naming_the_commit(store: LocalStore, spec):
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable
    assert "no prebuilt" in found.reason and COMMIT[:12] in found.reason
    assert found.metadata is None


def test_lookup_finds_a_complete_prebuilt_of_this_definition(store: LocalStore, spec, tmp_path: Path):
    stored = store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    found = prebuilt.lookup(store, spec, COMMIT)
    assert found.usable
    assert found.metadata == stored
    assert found.reason.startswith(store.where(prebuilt.key(COMMIT, prebuilt.TARBALL, digest_of(spec))))
    assert "12m34s" in found.reason  # build_seconds 754.2


def test_lookup_refuses_a_prebuilt_of_another_build_definition(store: LocalStore, spec, tmp_path: Path):
    other_features = tmp_path / "other.yaml"
    other_features.write_text((SCENARIOS / "no_overlap.yaml").read_text().replace("[simd]", "[simd, avx512]"))
    other = load_campaign(other_features)
    assert prebuilt.build_digest(other, other.build_stage) != prebuilt.build_digest(spec, spec.build_stage)
    store_prebuilt(store, other, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable  # the other definition's prebuilt is under its own key: not found under this one's
    assert found.reason.startswith(f"no prebuilt build of commit {COMMIT[:12]} in ")
    assert found.reason.endswith(prebuilt.key(COMMIT, "", digest_of(spec)).rstrip("/"))
    assert prebuilt.lookup(store, other, COMMIT).usable


def test_a_prebuilt_under_this_definitions_key_but_of_another_is_refused(store: LocalStore, spec, tmp_path: Path):
    """A target.json whose recorded digest is not this definition's (a 64-bit prefix collision, a hand-made copy)."""
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch", build_digest="0" * 64)
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable and "another build definition" in found.reason


def test_the_key_carries_the_architecture_and_the_build_digest(spec, tmp_path: Path):
    """x86_64 and arm64 builds of a commit, and builds of another command, features, toolchain file or
    Cargo.lock, each have a key of their own."""
    digest = digest_of(spec)
    x86, arm = (prebuilt.key(COMMIT, prebuilt.TARBALL, digest, arch) for arch in ("x86_64", "arm64"))
    assert x86 == f"prebuilt/{COMMIT}/x86_64/{digest[:16]}/target.tar.gz" and arm != x86
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": (SCENARIOS / "no_overlap.yaml").read_text()})
    digests = {"base": digest_of(load_campaign(repo / "campaign.yaml"))}
    for name, text in (("rust-toolchain.toml", '[toolchain]\nchannel = "1.80"\n'), ("Cargo.lock", "version = 3\n")):
        (repo / name).write_text(text)
        digests[name] = digest_of(load_campaign(repo / "campaign.yaml"))
        (repo / name).write_text(text + "# changed\n")
        digests[f"{name} changed"] = digest_of(load_campaign(repo / "campaign.yaml"))
    text = (repo / "campaign.yaml").read_text()
    (repo / "campaign.yaml").write_text(text.replace("[simd]", "[simd, avx512]"))
    digests["features"] = digest_of(load_campaign(repo / "campaign.yaml"))
    stage_run = load_campaign(repo / "campaign.yaml").build_stage.run
    (repo / "campaign.yaml").write_text(text.replace(stage_run, stage_run + " --locked", 1))
    digests["command"] = digest_of(load_campaign(repo / "campaign.yaml"))
    keys = {name: prebuilt.key(COMMIT, prebuilt.TARBALL, d, "x86_64") for name, d in digests.items()}
    assert len(set(keys.values())) == len(keys), keys


def test_lookup_refuses_a_prebuilt_for_another_arch_naming_both(store: LocalStore, spec, tmp_path: Path):
    other_arch = "riscv128" if prebuilt.this_arch() != "riscv128" else "s390x"
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch", arch=other_arch)
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable
    assert other_arch in found.reason and prebuilt.this_arch() in found.reason


def test_lookup_refuses_another_format(store: LocalStore, spec, tmp_path: Path):
    store_prebuilt(
        store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch", format=prebuilt.FORMAT + 1
    )
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable and "format" in found.reason


def test_lookup_of_a_target_json_without_its_tarball_record_is_not_usable(store: LocalStore, spec, tmp_path: Path):
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch", tarball=None)
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable and "records no tarball size and sha256" in found.reason


def test_lookup_of_a_broken_target_json_is_not_usable(store: LocalStore, spec):
    store.put_bytes(b"{not json", prebuilt.key(COMMIT, prebuilt.METADATA, digest_of(spec)))
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable and "is not valid JSON" in found.reason


def test_lookup_of_uncommitted_files_is_never_usable(store: LocalStore, spec, tmp_path: Path):
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    assert prebuilt.lookup(store, spec, COMMIT).usable  # the same prebuilt, for a clean run
    dirty = prebuilt.lookup(store, spec, COMMIT, dirty=True)
    assert not dirty.usable and "uncommitted" in dirty.reason
    assert not prebuilt.lookup(store, spec, None).usable


def test_a_half_uploaded_prebuilt_without_target_json_is_not_usable(store: LocalStore, spec, tmp_path: Path):
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    store.delete(prebuilt.key(COMMIT, prebuilt.METADATA, digest_of(spec)))  # the prebuild died before writing it
    found = prebuilt.lookup(store, spec, COMMIT)
    assert not found.usable and "no prebuilt" in found.reason


# --- fetch --------------------------------------------------------------------------------------------------


def test_fetch_downloads_verifies_and_extracts(store: LocalStore, spec, tmp_path: Path):
    stored = store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    found = prebuilt.lookup(store, spec, COMMIT)
    checkout, scratch = tmp_path / "checkout", tmp_path / "fetch-scratch"
    (checkout / "src").mkdir(parents=True)
    scratch.mkdir()
    fetched = prebuilt.fetch(store, COMMIT, found, checkout, scratch, spec.build_stage.build_output)
    stored_bytes = (store.root / prebuilt.key(COMMIT, prebuilt.TARBALL, digest_of(spec))).read_bytes()
    assert fetched.sha256 == hashlib.sha256(stored_bytes).hexdigest() == stored["tarball"]["sha256"]
    assert fetched.size == len(stored_bytes)
    assert fetched.key == prebuilt.key(COMMIT, prebuilt.TARBALL, digest_of(spec))
    assert files_under(checkout) == FILES
    assert os.listdir(scratch) == []  # the downloaded tarball is not left behind


def test_fetch_of_a_replaced_tarball_is_rejected_and_extracts_nothing(store: LocalStore, spec, tmp_path: Path):
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    found = prebuilt.lookup(store, spec, COMMIT)
    # A well-formed tarball of the same paths with other bytes: only the checksum can tell.
    impostor = handmade_tarball(tmp_path / "impostor.tar.gz", [("target/release/bench", b"malware")])
    stored = store.root / prebuilt.key(COMMIT, prebuilt.TARBALL, digest_of(spec))
    stored.write_bytes(impostor.read_bytes())
    checkout, scratch = tmp_path / "checkout", tmp_path / "fetch-scratch"
    checkout.mkdir()
    scratch.mkdir()
    with pytest.raises(prebuilt.PrebuiltRejected, match="sha256") as rejected:
        prebuilt.fetch(store, COMMIT, found, checkout, scratch, OUTPUT)
    assert hashlib.sha256(impostor.read_bytes()).hexdigest() in str(rejected.value)
    assert "it was not extracted" in str(rejected.value)
    assert everything_under(checkout) == []
    assert os.listdir(scratch) == []


def test_fetch_rejects_a_checksum_object_that_disagrees_with_target_json(store: LocalStore, spec, tmp_path: Path):
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    store.put_bytes(prebuilt.checksum_line("0" * 64), prebuilt.key(COMMIT, prebuilt.CHECKSUM, digest_of(spec)))
    found = prebuilt.lookup(store, spec, COMMIT)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    with pytest.raises(prebuilt.PrebuiltRejected, match="sha256"):
        prebuilt.fetch(store, COMMIT, found, checkout, tmp_path, OUTPUT)
    assert everything_under(checkout) == []


def test_fetch_of_a_tarball_gone_from_the_store_is_rejected(store: LocalStore, spec, tmp_path: Path):
    store_prebuilt(store, spec, COMMIT, write_build(tmp_path / "built"), tmp_path / "scratch")
    found = prebuilt.lookup(store, spec, COMMIT)
    store.delete(prebuilt.key(COMMIT, prebuilt.TARBALL, digest_of(spec)))
    with pytest.raises(prebuilt.PrebuiltRejected, match="could not download"):
        prebuilt.fetch(store, COMMIT, found, tmp_path / "checkout", tmp_path, OUTPUT)


# --- the plan says where the build comes from ----------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"campaign.yaml": (SCENARIOS / "no_overlap.yaml").read_text()})


def planned_build(plan):
    return next(p for p in plan.runs if p.run.stage.name == "build")


def test_plan_fetches_a_usable_prebuilt(repo: Path, store: LocalStore, tmp_path: Path):
    plan, root = make_plan(repo / "campaign.yaml", None, allow_dirty=False)
    commit = git(root, "rev-parse", "HEAD").strip()
    assert plan.commit == commit
    store_prebuilt(store, plan.spec, commit, write_build(tmp_path / "built"), tmp_path / "scratch")
    shown = add_build_source(plan, store.url)
    assert planned_build(shown).source.startswith("fetch prebuilt")
    assert all(p.source == "" for p in shown.runs if p.run.stage.name != "build")
    verdict = shown.verdicts[-1]
    assert (verdict.check, verdict.ok, verdict.warning) == ("prebuilt", True, False)
    assert store.where(prebuilt.key(commit, prebuilt.TARBALL, digest_of(plan.spec))) in verdict.summary
    assert shown.refusals == []
    stage_runs = {entry["id"]: entry for entry in shown.to_dict()["stage_runs"]}
    assert stage_runs["build"]["build"].startswith("fetch prebuilt")
    assert "build" not in stage_runs["bench"]


def test_plan_without_a_usable_prebuilt_builds_here_with_a_warning(repo: Path, store: LocalStore):
    plan, _ = make_plan(repo / "campaign.yaml", None, allow_dirty=False)
    shown = add_build_source(plan, store.url)
    assert planned_build(shown).source.startswith("build here")
    verdict = shown.verdicts[-1]
    assert (verdict.check, verdict.ok, verdict.warning) == ("prebuilt", True, True)
    assert "no prebuilt" in verdict.summary and "compiles on the run's machine" in verdict.summary
    assert f"campaign prebuild --store {store.url}" in verdict.details[0]
    assert verdict not in shown.refusals and shown.refusals == []


def test_with_build_source_uses_the_lookup_it_is_given(repo: Path, spec):
    plan, _ = make_plan(repo / "campaign.yaml", None, allow_dirty=False)
    usable = prebuilt.Lookup(True, "s3://bucket/prebuilt/x/target.tar.gz (1.0 MB, built today in 3s)", {})
    unusable = prebuilt.Lookup(False, "the prebuilt in s3://bucket/prebuilt/x/ was built for s390x")
    fetching = with_build_source(plan, usable, "s3://bucket")
    building = with_build_source(plan, unusable, "s3://bucket")
    assert planned_build(fetching).source == "fetch prebuilt (preflight: prebuilt)"
    assert planned_build(building).source == "build here (preflight: prebuilt)"
    assert not fetching.verdicts[-1].warning and building.verdicts[-1].warning
    assert "was built for s390x" in building.verdicts[-1].summary
    assert len(fetching.verdicts) == len(building.verdicts) == len(plan.verdicts) + 1


def test_a_plan_without_a_build_stage_has_no_build_source(tmp_path: Path, store: LocalStore):
    repo = make_repo(
        tmp_path / "repo",
        {"campaign.yaml": "name: plain\nscale_factors: [1]\nstages:\n  - {name: data, kind: data, run: 'true'}\n"},
    )
    plan, _ = make_plan(repo / "campaign.yaml", None, allow_dirty=False)
    shown = add_build_source(plan, store.url)
    assert shown == plan
    assert not store.root.exists()  # no store was opened, let alone written
