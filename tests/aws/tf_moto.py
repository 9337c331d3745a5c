"""Real Terraform, with the real hashicorp/aws provider, against moto's server on 127.0.0.1.

The reusable part of the AWS target's tests (runs, and later clusters, EC2 stop/start and sweeps):

    def test_something(tf_moto):                      # the session's TfMoto (tests/aws/conftest.py)
        workdir = tf_moto.workspace(tmp_path / "ws", variables)   # terraform/ + the moto override
        runner = tf_moto.runner(workdir)              # campaign's own TerraformRunner
        runner.init(); runner.plan(); runner.apply()
        ...
        runner.destroy()
        assert tf_moto.tagged(run_id) == []          # nothing tagged with the run is left in moto

    tf_moto.override_workspaces(monkeypatch)          # every workspace campaign itself prepares
                                                      # (`campaign run/plan --target aws`) talks to moto
    InstancePlayer (instance_player.py)               # plays the EC2 instances moto cannot boot

How it reaches the provider without a network: `find_mirror()` looks for a filesystem mirror of
hashicorp/aws ($CAMPAIGN_TF_PROVIDER_MIRROR, else the usual places; /opt/tf-plugins on the dev image),
and `write_cli_config()` writes a Terraform CLI configuration (TF_CLI_CONFIG_FILE) that installs
hashicorp/aws from it and nothing from the network. With no mirror the tests that need it are skipped
with the reason shown (`mirror_or_skip`); CAMPAIGN_TF_ALLOW_DOWNLOAD=1 lets Terraform download it instead.
Terraform links an unpacked mirror's provider into each workspace (no copy, about a second an init);
without a mirror one plugin cache (TF_PLUGIN_CACHE_DIR) serves every download of the session.

How it reaches moto: a test-only override file (`moto_override.tf`, Terraform's override-file
mechanism) written into the run's workspace sets the provider's `endpoints` (and the S3 backend's,
when the workspace has one) to moto's URL. terraform/ itself stays free of test settings. All traffic
goes to 127.0.0.0/8: the endpoints are moto's, credential and account lookups are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PROVIDER = "registry.terraform.io/hashicorp/aws"
MIRROR_ENV = "CAMPAIGN_TF_PROVIDER_MIRROR"
DOWNLOAD_ENV = "CAMPAIGN_TF_ALLOW_DOWNLOAD"
USUAL_MIRRORS = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
OVERRIDE_FILE = "moto_override.tf"
MODULE = Path(__file__).resolve().parents[2] / "terraform"
# What the module creates, by the services that hold it (each must point at moto).
SERVICES = ("ec2", "iam", "s3", "ssm", "sts", "resourcegroupstaggingapi")


def find_mirror() -> Path | None:
    """A directory holding registry.terraform.io/hashicorp/aws/<version>/<os_arch>/, or None."""
    candidates = [os.environ[MIRROR_ENV]] if os.environ.get(MIRROR_ENV) else list(USUAL_MIRRORS)
    for candidate in candidates:
        root = Path(candidate).expanduser()
        if any((root / PROVIDER).glob("*/*/terraform-provider-aws*")):
            return root
    return None


def mirror_or_skip() -> Path | None:
    """The mirror; None when downloads are allowed instead; else the test is skipped, saying why."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH: the AWS module tests run the real CLI (install Terraform >= 1.11)")
    mirror = find_mirror()
    if mirror is None and os.environ.get(DOWNLOAD_ENV) != "1":
        where = os.environ.get(MIRROR_ENV) or ", ".join(USUAL_MIRRORS)
        pytest.skip(
            f"no filesystem mirror of {PROVIDER} in {where}: set {MIRROR_ENV} to one "
            f"(`terraform providers mirror DIR`), or {DOWNLOAD_ENV}=1 to let Terraform download it"
        )
    return mirror


def write_cli_config(path: Path, mirror: Path | None) -> Path:
    """A Terraform CLI configuration: hashicorp/aws from the mirror, never from the network."""
    if mirror is None:
        path.write_text("# CAMPAIGN_TF_ALLOW_DOWNLOAD=1: providers come from the registry\n")
        return path
    path.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = {json.dumps(str(mirror))}\n    include = ["{PROVIDER}"]\n  }}\n'
        f'  direct {{\n    exclude = ["{PROVIDER}"]\n  }}\n'
        "}\n"
    )
    return path


def provider_override(endpoint: str) -> str:
    endpoints = "\n".join(f"    {service} = {json.dumps(endpoint)}" for service in SERVICES)
    return (
        "# Written by tests/aws/tf_moto.py: the AWS provider talks to moto on 127.0.0.1. Test-only.\n"
        'provider "aws" {\n'
        '  access_key                  = "testing"\n  secret_key                  = "testing"\n'
        "  skip_credentials_validation = true\n  skip_requesting_account_id  = true\n"
        "  skip_metadata_api_check     = true\n  s3_use_path_style           = true\n"
        f"  endpoints {{\n{endpoints}\n  }}\n}}\n"
    )


def backend_override(endpoint: str) -> str:
    """The S3 backend (state_backend) on moto: an override's backend block replaces the original."""
    return (
        'terraform {\n  backend "s3" {\n'
        f"    endpoints                   = {{ s3 = {json.dumps(endpoint)} }}\n"
        "    use_path_style              = true\n    skip_credentials_validation = true\n"
        "    skip_requesting_account_id  = true\n    skip_metadata_api_check     = true\n"
        "    skip_region_validation      = true\n  }\n}\n"
    )


# Left out of buckets that campaign's own runs create on moto (test_aws_module_on_moto.py applies both):
# - the TLS-only policy: moto evaluates bucket policies but takes condition keys it does not know
#   (aws:SecureTransport) as matched, so that Deny would refuse every request, over HTTPS or not;
# - the lifecycle rules: moto returns them in a shape the provider does not recognise as its own, and
#   the provider polls about a minute for them to settle.
WITHOUT_BUCKET_EXTRAS = (
    "\n# moto: no TLS-only policy, no lifecycle rules here (see tests/aws/tf_moto.py).\n"
    'resource "aws_s3_bucket_policy" "results" {\n  count = 0\n}\n'
    'resource "aws_s3_bucket_lifecycle_configuration" "results" {\n  count = 0\n}\n'
)


def write_override(workdir: Path, endpoint: str, *, bucket_extras: bool = True) -> Path:
    """Point a prepared workspace at moto (the backend too, when campaign wrote one)."""
    from campaign.targets.aws.infra import BACKEND_FILE

    text = provider_override(endpoint)
    if (workdir / BACKEND_FILE).exists():
        text += backend_override(endpoint)
    if not bucket_extras:
        text += WITHOUT_BUCKET_EXTRAS
    path = workdir / OVERRIDE_FILE
    path.write_text(text)
    return path


@dataclass(frozen=True)
class TfMoto:
    """Terraform wired to one moto server: workspaces, runners, and what moto holds afterwards."""

    endpoint: str
    cli_config: Path
    plugin_cache: Path
    mirror: Path | None = None
    region: str = "us-east-1"

    def environment(self) -> dict[str, str]:
        """An unpacked mirror is linked into each workspace, never copied: no cache is needed then. A
        download (no mirror) fills one cache for the session instead of one copy per init."""
        cache = {} if self.mirror else {"TF_PLUGIN_CACHE_DIR": str(self.plugin_cache)}
        return {
            "TF_CLI_CONFIG_FILE": str(self.cli_config),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "AWS_ENDPOINT_URL": self.endpoint,
            **cache,
        }

    @contextmanager
    def activated(self):
        """This process's environment (Terraform, boto3 and the aws CLI inherit it) set for moto."""
        with pytest.MonkeyPatch.context() as env:
            for name, value in self.environment().items():
                env.setenv(name, value)
            yield self

    def workspace(
        self, workdir: Path, variables: dict, *, state_backend: str | None = None, module_dir: Path = MODULE
    ) -> tuple[Path, dict | None]:
        """campaign's own prepare_workspace, then the moto override: (workdir, backend config for init)."""
        from campaign.targets.aws import infra

        backend = infra.prepare_workspace(workdir, variables, module_dir=module_dir, state_backend=state_backend)
        write_override(workdir, self.endpoint)
        return workdir, backend

    def runner(self, workdir: Path):
        from campaign.targets.aws.tf import TerraformRunner

        return TerraformRunner(workdir)

    def override_workspaces(self, monkeypatch: pytest.MonkeyPatch, *, bucket_extras: bool = False) -> None:
        """Every workspace campaign prepares from now on (run, plan, down) gets the moto override; a bucket
        it creates gets neither TLS-only policy nor lifecycle rules unless asked (WITHOUT_BUCKET_EXTRAS)."""
        from campaign.targets.aws import infra

        original = infra.prepare_workspace

        def prepare_for_moto(workdir, variables, **options):
            backend = original(workdir, variables, **options)
            write_override(Path(workdir), self.endpoint, bucket_extras=bucket_extras)
            return backend

        monkeypatch.setattr(infra, "prepare_workspace", prepare_for_moto)

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)

    def tagged(self, run_id: str) -> list[str]:
        """What moto holds tagged campaign:run-id=<run_id> (terminated instances excluded), plus IAM
        roles and instance profiles of the run (IAM is not in the tagging API's answer)."""
        ec2, iam = self.client("ec2"), self.client("iam")
        found = [f"instance {i}" for i in _instances(ec2, run_id)]
        groups = ec2.describe_security_groups(Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}])
        found += [f"security group {g['GroupId']}" for g in groups["SecurityGroups"]]
        roles = [
            r["RoleName"]
            for r in iam.list_roles()["Roles"]
            if _tag(iam.list_role_tags(RoleName=r["RoleName"])["Tags"]) == run_id
        ]
        found += [f"role {name}" for name in roles]
        profiles = iam.list_instance_profiles()["InstanceProfiles"]
        found += [
            f"instance profile {p['InstanceProfileName']}"
            for p in profiles
            if any(role["RoleName"] in roles for role in p["Roles"]) or _tag(p.get("Tags", [])) == run_id
        ]
        return found


RUN_TAG = "campaign:run-id"


def _tag(tags: list[dict]) -> str | None:
    return next((t["Value"] for t in tags if t["Key"] == RUN_TAG), None)


def _instances(ec2, run_id: str) -> list[str]:
    reservations = ec2.describe_instances(Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}])["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]


@dataclass
class Applied:
    """One applied workspace: its runner, variables and outputs; destroy() undoes it (bucket kept)."""

    name: str
    runner: object
    variables: dict
    outputs: dict

    def destroy(self) -> None:
        from campaign.targets.aws import infra

        self.runner.state_rm(infra.bucket_addresses(self.runner.state_list()))
        self.runner.destroy()


def apply_module(
    harness: TfMoto, workdir: Path, name: str, variables: dict, *, state_backend: str | None = None
) -> Applied:
    """init, plan and apply terraform/ in workdir (campaign's own workspace layout) against moto."""
    workdir, backend = harness.workspace(workdir, variables, state_backend=state_backend)
    runner = harness.runner(workdir)
    runner.init(backend_config=backend)
    runner.plan()
    runner.apply()
    return Applied(name, runner, variables, runner.output())


def apply_in_parallel(harness: TfMoto, root: Path, variants: dict[str, tuple[dict, str | None]]) -> dict[str, Applied]:
    """Apply several variants at once: moto answers in milliseconds, Terraform mostly waits on its
    own polling (instances, IAM), so threads cut the wall time to about one apply."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(variants)) as pool:
        futures = {
            name: pool.submit(apply_module, harness, root / name, name, variables, state_backend=backend)
            for name, (variables, backend) in variants.items()
        }
        return {name: future.result() for name, future in futures.items()}


def destroy_in_parallel(runs: list[Applied]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    if runs:
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            for future in [pool.submit(run.destroy) for run in runs]:
                future.result()
