"""The whole prebuilt path, for real: the Rust fixture built by cargo, `campaign prebuild` into S3 (moto's
server), then `campaign run` fetching, verifying and extracting it with cargo absent from PATH; a corrupted
tarball refused with a fallback build that says so; idempotence, conflicts and the refusals of prebuild."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from campaign.prebuilt.artifact import build_digest
from campaign.spec.load import load_campaign

from .conftest import VENV_BIN, campaign, cargo_env, fixture_repo, tool


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    tool("cargo", install_hint="a Rust toolchain: rustup")
    return fixture_repo(tmp_path)


@pytest.fixture
def store(s3_bucket: str) -> str:
    return f"s3://{s3_bucket}/campaign"


def head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def prebuilt_key(repo: Path, name: str, campaign_file: str = "campaign.yaml") -> str:
    """Where `campaign prebuild -f CAMPAIGN_FILE` stores NAME: per commit, architecture and build digest."""
    spec = load_campaign(repo / campaign_file)
    digest = build_digest(spec, spec.build_stage)
    return f"campaign/prebuilt/{head(repo)}/{platform.machine()}/{digest[:16]}/{name}"


def get(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def without_cargo() -> dict[str, str]:
    """The environment with every PATH entry that holds cargo or rustc removed (the venv's bin stays)."""
    env = cargo_env()
    kept = [
        entry
        for entry in env["PATH"].split(os.pathsep)
        if not any((Path(entry) / name).exists() for name in ("cargo", "rustc"))
    ]
    env["PATH"] = os.pathsep.join([str(VENV_BIN), *kept])
    assert shutil.which("cargo", path=env["PATH"]) is None and shutil.which("rustc", path=env["PATH"]) is None
    return env


def build_entry(repo: Path, run_id: str) -> dict:
    journal = repo / ".campaign" / "runs" / run_id / "journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    [entry] = [e for e in entries if e.get("stage_run") == "build" and e["state"] in ("succeeded", "failed")]
    return entry


def plan_of(repo: Path, store: str, *extra: str) -> dict:
    result = campaign(repo, "plan", "sf0.01", "--json", "--store", store, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def build_row_and_verdict(plan: dict) -> tuple[dict, dict]:
    [row] = [r for r in plan["stage_runs"] if r["id"] == "build"]
    [verdict] = [v for v in plan["preflight"] if v["check"] == "prebuilt"]
    return row, verdict


def bench_records(repo: Path, run_id: str, binary: str) -> list[dict]:
    path = repo / ".campaign" / "runs" / run_id / "outputs" / "results" / "sf0.01" / f"{binary}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prebuild_stores_a_verified_tarball_and_a_run_fetches_it_without_cargo(repo, store, s3_client, s3_bucket):
    row, verdict = build_row_and_verdict(plan_of(repo, store))
    assert (
        row["build"].startswith("build here")
        and verdict["warning"]
        and "no prebuilt build of commit" in verdict["summary"]
    )

    built = campaign(repo, "prebuild", "--store", store)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = get(s3_client, s3_bucket, prebuilt_key(repo, "target.tar.gz"))
    digest = hashlib.sha256(tarball).hexdigest()
    assert (
        get(s3_client, s3_bucket, prebuilt_key(repo, "target.tar.gz.sha256")).decode() == f"{digest}  target.tar.gz\n"
    )
    metadata = json.loads(get(s3_client, s3_bucket, prebuilt_key(repo, "target.json")))
    assert metadata["commit"] == head(repo) and metadata["features"] == ["alloc-heavy", "simd"]
    assert metadata["tarball"] == {
        "key": prebuilt_key(repo, "target.tar.gz").removeprefix("campaign/"),
        "size": len(tarball),
        "sha256": digest,
    }
    assert metadata["target_triple"].endswith("-linux-gnu") and metadata["toolchain"]["rustc"].startswith("rustc ")
    assert metadata["toolchain"]["cargo"].startswith("cargo ") and metadata["build_seconds"] > 0
    assert json.loads(get(s3_client, s3_bucket, "campaign/prebuilt/latest.json"))["commit"] == head(repo)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        names = archive.getnames()
    assert all(n == "target/release" or n.startswith("target/release/") for n in names), "only the build output"
    assert {"target/release/bench-simd", "target/release/bench-alloc"} <= set(names), "the union of the features"

    row, verdict = build_row_and_verdict(plan_of(repo, store))
    assert row["build"].startswith("fetch prebuilt") and verdict["ok"] and not verdict["warning"]

    result = campaign(repo, "run", "sf0.01", "--store", store, env=without_cargo())
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    entry = build_entry(repo, run_id)
    assert entry["build_source"] == "prebuilt" and entry["prebuilt"]["sha256"] == digest
    log = (repo / ".campaign" / "runs" / run_id / "logs" / "build.log").read_text()
    assert f"sha256 {digest} verified" in log and "nothing was compiled" in log
    for binary in ("bench-simd", "bench-alloc"):
        records = bench_records(repo, run_id, binary)
        assert len(records) == 3 and {r["name"] for r in records} == {binary}


def test_a_second_prebuild_of_the_commit_verifies_and_keeps_what_is_stored(repo, store, s3_client, s3_bucket):
    assert campaign(repo, "prebuild", "--store", store).returncode == 0
    before = s3_client.head_object(Bucket=s3_bucket, Key=prebuilt_key(repo, "target.tar.gz"))
    again = campaign(repo, "prebuild", "--store", store)
    assert again.returncode == 0, again.stderr
    assert "already stored" in again.stdout and "building in" not in again.stdout
    after = s3_client.head_object(Bucket=s3_bucket, Key=prebuilt_key(repo, "target.tar.gz"))
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])


def test_a_corrupted_tarball_is_refused_and_the_build_stage_compiles_loudly(repo, store, s3_client, s3_bucket):
    assert campaign(repo, "prebuild", "--store", store).returncode == 0
    forged = gzip.compress(b"not the build")
    s3_client.put_object(Bucket=s3_bucket, Key=prebuilt_key(repo, "target.tar.gz"), Body=forged)

    result = campaign(repo, "run", "sf0.01", "--store", store)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BUILDING ON THIS MACHINE: the prebuilt was refused" in result.stderr
    assert hashlib.sha256(forged).hexdigest() in result.stderr, "the warning names the sha256 it found"
    assert "campaign prebuild --store " + store in result.stderr, "and says how to prebuild"
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    entry = build_entry(repo, run_id)
    assert entry["build_source"] == "built here" and "sha256" in entry["prebuilt_unusable"]
    log = (repo / ".campaign" / "runs" / run_id / "logs" / "build.log").read_text()
    assert "BUILDING ON THIS MACHINE" in log and "Compiling kernels" in log, "cargo really built"
    assert len(bench_records(repo, run_id, "bench-simd")) == 3


def test_prebuilts_of_two_build_definitions_of_a_commit_live_side_by_side(repo, store, s3_client, s3_bucket):
    # the same stages, but no stage needs simd: the build differs (--features alloc-heavy), so does its key
    other = (repo / "campaign.yaml").read_text().replace("features: [simd]", "features: [alloc-heavy]")
    (repo / "other.yaml").write_text(other)
    subprocess.run(["git", "add", "other.yaml"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "other"], cwd=repo, check=True)
    assert campaign(repo, "prebuild", "-f", "other.yaml", "--store", store).returncode == 0
    assert prebuilt_key(repo, "target.json", "other.yaml") != prebuilt_key(repo, "target.json")
    row, verdict = build_row_and_verdict(plan_of(repo, store))
    assert row["build"].startswith("build here") and "no prebuilt build of commit" in verdict["summary"]
    ours = campaign(repo, "prebuild", "--store", store)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert json.loads(get(s3_client, s3_bucket, prebuilt_key(repo, "target.json")))["campaign_file"] == "campaign.yaml"
    theirs = json.loads(get(s3_client, s3_bucket, prebuilt_key(repo, "target.json", "other.yaml")))
    assert theirs["campaign_file"] == "other.yaml"  # not overwritten
    row, _ = build_row_and_verdict(plan_of(repo, store))
    assert row["build"].startswith("fetch prebuilt")


def write_repo(tmp_path: Path, campaign_text: str, files: dict[str, str] | None = None) -> Path:
    repo = tmp_path / "small"
    repo.mkdir()
    (repo / "campaign.yaml").write_text(campaign_text)
    (repo / ".gitignore").write_text("/out/\n/.campaign/\n")
    for name, text in (files or {}).items():
        (repo / name).write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "small"]):
        subprocess.run(git + command, cwd=repo, check=True, capture_output=True)
    return repo


NO_BUILD = """name: no-build
scale_factors: [1]
stages:
  - name: bench
    kind: bench
    run: echo bench
"""

SHELL_BUILD = """name: shell-build
scale_factors: [1]
stages:
  - name: build
    kind: build
    run: {run}
    build_output: [out]
"""


def test_a_campaign_without_a_build_stage_has_nothing_to_prebuild(tmp_path: Path, store, s3_client, s3_bucket):
    repo = write_repo(tmp_path, NO_BUILD)
    result = campaign(repo, "prebuild", "--store", store)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nothing to build: campaign.yaml has no stage with build_output")
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket)


def test_a_failing_build_exits_4_with_its_whole_log_and_uploads_nothing(tmp_path: Path, store, s3_client, s3_bucket):
    repo = write_repo(tmp_path, SHELL_BUILD.format(run="'for i in $(seq 300); do echo line $i; done; exit 7'"))
    result = campaign(repo, "prebuild", "--store", store)
    assert result.returncode == 4
    assert "the build stage 'build' exited with code 7" in result.stderr and "Nothing was uploaded" in result.stderr
    assert "line 1\n" in result.stderr and "line 300\n" in result.stderr, "the whole log, not its tail"
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket)


def test_a_build_without_its_build_output_exits_4(tmp_path: Path, store, s3_client, s3_bucket):
    repo = write_repo(tmp_path, SHELL_BUILD.format(run="echo built nothing"))
    result = campaign(repo, "prebuild", "--store", store)
    assert result.returncode == 4 and "exited 0 but did not produce out (its build_output)" in result.stderr
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket)


def test_in_place_refuses_a_dirty_checkout_and_builds_in_a_clean_one(tmp_path: Path, store, s3_client, s3_bucket):
    repo = write_repo(tmp_path, SHELL_BUILD.format(run="mkdir -p out && echo tool > out/tool"))
    (repo / "notes.txt").write_text("uncommitted")
    refused = campaign(repo, "prebuild", "--in-place", "--store", store)
    assert refused.returncode == 3 and "?? notes.txt" in refused.stderr and "drop --in-place" in refused.stderr
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket)

    (repo / "notes.txt").unlink()
    built = campaign(repo, "prebuild", "--in-place", "--store", store)
    assert built.returncode == 0, built.stderr
    assert (repo / "out" / "tool").read_text() == "tool\n", "built in the repository itself"
    assert f"building in {repo}:" in built.stdout


def test_a_resume_on_a_machine_without_the_build_fetches_it_again(repo, tmp_path: Path):
    """The journal says the build succeeded, but this checkout (a new machine's) has no target/release."""
    store = str(tmp_path / "store")
    flaky = (
        (repo / "campaign.yaml").read_text().replace("for i in $(seq", 'test -z "${FAIL_BENCH:-}" && for i in $(seq')
    )
    (repo / "campaign.yaml").write_text(flaky)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "flaky"], cwd=repo, check=True
    )
    assert campaign(repo, "prebuild", "--store", store).returncode == 0
    failed = campaign(repo, "run", "sf0.01", "--store", store, env={**without_cargo(), "FAIL_BENCH": "1"})
    assert failed.returncode == 4, failed.stdout + failed.stderr
    run_id = failed.stdout.splitlines()[0].removeprefix("run: ")
    checkout = repo / ".campaign" / "runs" / run_id / "checkout"
    shutil.rmtree(checkout)  # the new machine: `resume` clones the commit again, without any build output

    resumed = campaign(repo, "resume", run_id, "--store", store, env=without_cargo())
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    journal = [json.loads(line) for line in (checkout.parent / "journal.jsonl").read_text().splitlines()]
    builds = [e for e in journal if e.get("stage_run") == "build"]
    assert [e["state"] for e in builds] == ["running", "succeeded", "invalidated", "running", "succeeded"]
    assert "target/release is not in this machine's checkout" in builds[2]["reason"]
    assert builds[-1]["build_source"] == "prebuilt" and (checkout / "target/release/bench-simd").is_file()
    assert len(bench_records(repo, run_id, "bench-alloc")) == 3


def test_a_target_json_that_is_not_json_is_refused_and_kept(tmp_path: Path):
    repo = write_repo(tmp_path, SHELL_BUILD.format(run="mkdir -p out && echo tool > out/tool"))
    metadata = tmp_path / "store" / prebuilt_key(repo, "target.json").removeprefix("campaign/")
    metadata.parent.mkdir(parents=True)
    metadata.write_text("{torn")
    result = campaign(repo, "prebuild", "--store", str(tmp_path / "store"))
    assert result.returncode == 5, result.stdout + result.stderr
    assert f"{metadata} is not valid JSON" in result.stderr and f"rm -r {metadata.parent}" in result.stderr
    assert metadata.read_text() == "{torn" and not (metadata.parent / "target.tar.gz").exists()
