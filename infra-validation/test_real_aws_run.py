"""A tiny campaign on a small real instance: results present and verified, and nothing tagged left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTANCE_TYPE = os.environ.get("CAMPAIGN_REAL_AWS_INSTANCE_TYPE", "t3.large")
SELECTION = os.environ.get("CAMPAIGN_REAL_AWS_SELECTION", "sf0.01")

pytestmark = pytest.mark.real_aws


def campaign(*args: str, timeout: float = 3 * 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "campaign.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_doctor_finds_working_credentials():
    result = campaign("doctor", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_tiny_campaign_runs_verifies_and_leaves_nothing_behind():
    import boto3

    from campaign.targets.aws import ec2

    plan = campaign("plan", SELECTION, "--target", "aws", "--instance-type", INSTANCE_TYPE, "--json", timeout=300)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    document = json.loads(plan.stdout)
    store, region = document["aws"]["store"], document["aws"]["region"]

    run = campaign("run", SELECTION, "--target", "aws", "--instance-type", INSTANCE_TYPE)
    assert run.stdout.startswith("run: "), run.stdout + run.stderr
    run_id = run.stdout.splitlines()[0].removeprefix("run: ")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"destroyed: nothing of run {run_id} is left running" in run.stdout

    verified = campaign("verify", run_id, "--store", store, "--deep", timeout=600)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    status = json.loads(campaign("status", run_id, "--store", store, "--json", timeout=300).stdout)
    assert status["state"] == "succeeded"
    assert (REPO / ".campaign" / "runs" / run_id / "outputs").is_dir()

    assert ec2.leftover_instances(ec2.ec2_client(region), run_id) == []
    tagging = boto3.client("resourcegroupstaggingapi", region_name=region)
    pages = tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": ec2.RUN_TAG, "Values": [run_id]}])
    left = [
        item["ResourceARN"]
        for page in pages
        for item in page["ResourceTagMappingList"]
        if ":instance/" not in item["ResourceARN"]
    ]  # terminated instances stay listed for a while
    assert left == [], f"resources tagged {ec2.RUN_TAG}={run_id} remain: {left}"
    iam = boto3.client("iam")
    roles = [
        r["RoleName"]
        for page in iam.get_paginator("list_roles").paginate()
        for r in page["Roles"]
        if r["RoleName"].startswith("campaign-") and run_id in r.get("Description", "")
    ]
    assert roles == []
