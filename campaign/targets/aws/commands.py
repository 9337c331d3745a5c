"""`campaign down RUN` and `campaign doctor`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from campaign.errors import InputError, PreflightRefused
from campaign.targets.aws import checks, ec2, infra
from campaign.targets.aws.auth import Auth
from campaign.targets.aws.settings import config_path, load_settings


def down(run_id: str, *, root: Path, state_dir: Path, out: Callable[[str], None] = print) -> None:
    """Destroy what is left of a run (after --keep, or a teardown that did not finish)."""
    from campaign.targets.aws.session import destroy
    from campaign.targets.aws.tf import TerraformRunner

    workdir = infra.workspace_dir(state_dir, run_id)
    if not workdir.is_dir():
        raise InputError(
            f"no Terraform workspace for run {run_id} in {workdir.parent}. If resources of that run exist, they "
            f"are tagged campaign:run-id={run_id}: aws resourcegroupstaggingapi get-resources "
            f"--tag-filters Key=campaign:run-id,Values={run_id}"
        )
    variables = infra.read_variables(workdir)
    settings = load_settings(root, region=variables["region"])
    auth = Auth(settings)
    runner = TerraformRunner(workdir)
    backend = (
        infra.backend_config(settings.state_backend, run_id=run_id, region=variables["region"])
        if (workdir / infra.BACKEND_FILE).exists() and settings.state_backend
        else None
    )
    auth.activate()
    runner.init(backend_config=backend)
    out(f"destroying the infrastructure of run {run_id} (workspace {workdir}) …")
    destroy(runner, auth)
    left = ec2.leftover_instances(ec2.ec2_client(variables["region"]), run_id)
    if left:
        raise PreflightRefused(
            f"terraform destroy finished, but instances tagged campaign:run-id={run_id} still "
            f"run: {', '.join(left)}. Terminate them: aws ec2 terminate-instances "
            f"--region {variables['region']} --instance-ids {' '.join(left)}"
        )
    out(f"destroyed: no instance of run {run_id} is left (the results bucket is kept)")


def doctor(root: Path, *, out: Callable[[str], None] = print) -> bool:
    """Which credentials are in effect and whether they work; terraform; the config file. True if all ok."""
    from campaign.targets.aws.target import default_bucket

    settings = load_settings(root)
    auth = Auth(settings)
    path = config_path(root)
    lines = [f"config: {path}" + ("" if path.exists() else " (absent: defaults)"), f"auth: {auth.describe()}"]
    verdict, identity = checks.credentials_verdict(auth)
    lines.append(f"  {'ok  ' if verdict.ok else 'FAIL'} {verdict.summary}")
    terraform = checks.terraform_version_verdict()
    lines.append(f"terraform: {'ok   ' if terraform.ok else 'FAIL '}{terraform.summary}")
    repo_url = checks.remote_url(root, settings.repo_url)
    lines.append(f"the instance clones: {repo_url or 'nothing (no origin remote; set repo_url)'}")
    bucket = settings.bucket or default_bucket(identity, settings.region)
    lines.append(f"region {settings.region} · instance type {settings.instance_type} · bucket {bucket}")
    for line in lines:
        out(line)
    return verdict.ok and terraform.ok
