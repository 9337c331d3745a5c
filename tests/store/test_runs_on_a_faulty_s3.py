"""Whole runs against moto's S3 behind a fault-injecting proxy: throttling, then an outage."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..core.conftest import GEN_SH, TOY_CAMPAIGN, make_repo, run_cli
from ..core.test_resume import WAITING_BENCH, wait_for


def toy_repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": WAITING_BENCH}
    )


def env_for(endpoint: str, **extra: str) -> dict:
    return {**os.environ, "AWS_ENDPOINT_URL": endpoint, **extra}


def test_transient_503_slowdown_is_retried_and_the_run_succeeds(tmp_path, s3_bucket, flaky_proxy, s3_client):
    repo = toy_repo(tmp_path)
    released = tmp_path / "released"
    released.touch()
    proxy = flaky_proxy(fail={"PUT": 4})
    store = f"s3://{s3_bucket}/c"
    result = run_cli(repo, "run", "--store", store, env=env_for(proxy.endpoint, TOY_RELEASE=str(released)))
    assert result.returncode == 0, result.stderr[-2000:]
    run_id = result.stdout.split()[1]
    assert proxy.requests["PUT"] >= 4 + 8  # the four refused PUTs were sent again
    body = s3_client.get_object(Bucket=s3_bucket, Key=f"c/runs/{run_id}/outputs/results/sf0.01/toy.jsonl")["Body"]
    assert [json.loads(line)["query"] for line in body.read().decode().splitlines()] == ["q1", "q2", "q3"]
    assert run_cli(repo, "verify", run_id, "--store", store, "--deep", env=env_for(proxy.endpoint)).returncode == 0


def test_an_outage_fails_the_run_in_bounded_time_and_resume_uploads_everything(
    tmp_path, s3_bucket, s3_server, flaky_proxy
):
    repo = toy_repo(tmp_path)
    release = tmp_path / "release"
    proxy = flaky_proxy()
    store = f"s3://{s3_bucket}/c"
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign.cli", "run", "--store", store],
        cwd=repo,
        env=env_for(proxy.endpoint, TOY_RELEASE=str(release)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = process.stdout.readline().split()[1]
    results = repo / ".campaign/runs" / run_id / "outputs/results/sf0.01/toy.jsonl"
    wait_for(results)
    proxy.go_down()  # the store is gone for good, mid-stage
    release.touch()
    began = time.monotonic()
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 5, stderr
    assert time.monotonic() - began < 90
    assert f"s3://{s3_bucket}/c/runs/{run_id}/" in stderr  # the object is named
    local = [json.loads(line)["query"] for line in results.read_text().splitlines()]
    assert local == ["q1", "q2", "q3"]  # measured, kept locally
    journal = (repo / ".campaign/runs" / run_id / "journal.jsonl").read_text().splitlines()
    assert "store failure" in json.loads(journal[-1])["reason"]

    back = env_for(s3_server, TOY_RELEASE=str(release))  # the store is reachable again
    resumed = run_cli(repo, "resume", run_id, "--store", store, env=back)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    status = json.loads(run_cli(repo, "status", run_id, "--store", store, "--json", env=back).stdout)
    assert status["state"] == "succeeded"
    assert run_cli(repo, "verify", run_id, "--store", store, "--deep", env=back).returncode == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["query"] for r in records] == ["q1", "q2", "q3"]  # nothing measured twice
