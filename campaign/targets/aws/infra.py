"""One run's Terraform workspace: a copy of terraform/, its variables, its state, and what it outputs.

The workspace is `.campaign/aws/<run-id>/` (under the state dir). The module is copied in, so a later
change to terraform/ can never stop `campaign down` from destroying an older run. Variables go to
terraform.tfvars.json (Terraform reads it by itself); the state stays there too, or in an S3 backend
when `state_backend` is set.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import InputError
from campaign.targets.aws.settings import AwsSettings

MODULE_DIR = Path(__file__).resolve().parents[3] / "terraform"
VARS_FILE = "terraform.tfvars.json"
BACKEND_FILE = "backend.tf.json"
USERDATA_FILE = "userdata.sh"
# The bucket resources when this module created the bucket: taken out of the state before destroy,
# so the bucket and the results in it outlive the run.
BUCKET_ADDRESS_PREFIXES = ("aws_s3_bucket.", "aws_s3_bucket_")
OUTPUTS_READ = ("instance_ids", "bucket", "prefix", "region")


@dataclass(frozen=True)
class RunInfra:
    """What `terraform output` says about a run's infrastructure."""

    instance_ids: tuple[str, ...]
    bucket: str
    prefix: str
    region: str

    @classmethod
    def from_outputs(cls, outputs: dict) -> RunInfra:
        missing = [name for name in OUTPUTS_READ if name not in outputs]
        if missing:
            raise InputError(
                f"the Terraform module has no output(s) {', '.join(missing)}; terraform/outputs.tf "
                "and campaign/targets/aws/infra.py disagree."
            )
        return cls(
            instance_ids=tuple(outputs["instance_ids"]),
            bucket=outputs["bucket"],
            prefix=outputs["prefix"],
            region=outputs["region"],
        )


def module_variables(
    settings: AwsSettings, *, run_id: str, campaign: str, commit: str, user_data: str, create_bucket: bool
) -> dict:
    """The values of terraform/variables.tf for one run (every variable, so none is left to its default
    by accident)."""
    return {
        "run_id": run_id,
        "campaign": campaign,
        "commit": commit,
        "region": settings.region,
        "instance_type": settings.instance_type,
        "instance_count": 1,
        "spot": settings.spot,
        "root_volume_gb": settings.root_volume_gb,
        "bucket": settings.bucket,
        "create_bucket": create_bucket,
        "prefix": settings.prefix.strip("/"),
        "user_data": user_data,
        "subnet_id": settings.subnet_id,
        "imds_hop_limit": settings.imds_hop_limit,
        "repo_token_parameter": settings.repo_token_parameter,
        "ami_ssm_parameter_prefix": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default",
    }


def workspace_dir(state_dir: Path, run_id: str) -> Path:
    return state_dir / "aws" / run_id


def prepare_workspace(
    workdir: Path, variables: dict, *, module_dir: Path = MODULE_DIR, state_backend: str | None = None
) -> dict[str, str] | None:
    """Copy the module, write its variables (and backend); returns the backend config for init, if any."""
    if not module_dir.is_dir():
        raise InputError(
            f"the Terraform module {module_dir} is missing; campaign's AWS target runs from a "
            "clone of its repository (pip install -e .)."
        )
    workdir.mkdir(parents=True, exist_ok=True)
    for source in sorted(module_dir.glob("*.tf")):
        shutil.copy2(source, workdir / source.name)
    (workdir / VARS_FILE).write_text(json.dumps(variables, indent=1, sort_keys=True), encoding="utf-8")
    (workdir / USERDATA_FILE).write_text(variables.get("user_data", ""), encoding="utf-8")
    if not state_backend:
        return None
    (workdir / BACKEND_FILE).write_text(json.dumps({"terraform": {"backend": {"s3": {}}}}), encoding="utf-8")
    return backend_config(state_backend, run_id=variables["run_id"], region=variables["region"])


def backend_config(state_backend: str, *, run_id: str, region: str) -> dict[str, str]:
    """-backend-config values for the S3 backend: one state object per run, S3-native locking."""
    bucket, _, prefix = state_backend.removeprefix("s3://").partition("/")
    key = "/".join(part for part in (prefix.strip("/"), run_id, "terraform.tfstate") if part)
    return {"bucket": bucket, "key": key, "region": region, "encrypt": "true", "use_lockfile": "true"}


def read_variables(workdir: Path) -> dict:
    path = workdir / VARS_FILE
    if not path.exists():
        raise InputError(f"{workdir} has no {VARS_FILE}: it is not the Terraform workspace of a run.")
    return json.loads(path.read_text(encoding="utf-8"))


def bucket_addresses(state: list[str]) -> list[str]:
    return [address for address in state if address.startswith(BUCKET_ADDRESS_PREFIXES)]
