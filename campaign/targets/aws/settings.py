"""Settings of the AWS target: one frozen object, from defaults, `.campaign/config.toml` and flags.

The config file (git-ignored with the rest of .campaign/, because it names your profile) has one
table, `[aws]`; every key is optional:

    [aws]
    region = "eu-west-1"
    instance_type = "c7i.2xlarge"
    instance_types = ["c7i.xlarge", "c7g.xlarge"]   # `campaign run --target aws` sweeps them (see README)
    bucket = "my-campaign-results"      # created (and kept) when it does not exist
    prefix = "campaigns"
    profile = "bench"                   # an AWS profile, SSO included
    auth_command = "aws-vault exec bench --"   # or a wrapper that provides credentials
    max_hours = 8                       # the watchdog: the instance powers itself off after this
    spot = false
    root_volume_gb = 100
    repo_url = "https://github.com/me/bench.git"   # default: `git remote get-url origin`
    install_spec = ".[tpch]"            # what the instance pip-installs from the checkout
    state_backend = "s3://my-tf-state/campaign"    # default: local state in .campaign/aws/<run-id>/
    subnet_id = "subnet-0123"           # default: the default VPC's default subnet
    imds_hop_limit = 1                  # 2 lets containers on the instance reach IMDS (a WARN in plan)
    repo_token_parameter = "/campaign/github-token"   # private repository: a SecureString the instance reads
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign.errors import InputError

CONFIG_RELATIVE = ".campaign/config.toml"
DEFAULT_REGION = "us-east-1"
DEFAULT_INSTANCE_TYPE = "c7i.xlarge"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# As terraform/variables.tf validates them: the prefix lands in the instance role's policy, so no
# wildcard, policy variable or stray slash may widen it.
PREFIX = re.compile(r"^([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?$")
SSM_PARAMETER = re.compile(r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


@dataclass(frozen=True)
class AwsSettings:
    """Everything the AWS target needs to know before it starts; flags override the config file."""

    region: str = DEFAULT_REGION
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_types: tuple[str, ...] = ()  # a sweep, one type after another, when the command line names none
    bucket: str = ""  # '' means: campaign-<account id>-<region>, created when missing
    prefix: str = "campaign"
    profile: str | None = None
    auth_command: tuple[str, ...] = ()
    max_hours: float = 8.0
    spot: bool = False
    root_volume_gb: int = 100
    repo_url: str | None = None
    install_spec: str = ".[tpch]"
    state_backend: str | None = None
    subnet_id: str | None = None
    imds_hop_limit: int = 1
    repo_token_parameter: str | None = None
    keep: bool = False
    poll_interval_s: float = 15.0
    deadline_margin_s: float = 900.0  # watch this long past max_hours before giving up
    config_path: Path | None = field(default=None, compare=False)

    @property
    def watchdog_minutes(self) -> int:
        return max(1, round(self.max_hours * 60))

    @property
    def deadline_s(self) -> float:
        return self.max_hours * 3600 + self.deadline_margin_s

    def with_bucket(self, bucket: str) -> AwsSettings:
        return dataclasses.replace(self, bucket=bucket)

    def store_url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")


def config_path(repo_root: Path) -> Path:
    return Path(os.environ.get("CAMPAIGN_CONFIG") or repo_root / CONFIG_RELATIVE)


def load_settings(repo_root: Path, **overrides: Any) -> AwsSettings:
    """Defaults, then the [aws] table of the config file, then the flags that were given (not None)."""
    path = config_path(repo_root)
    values = _read_config(path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = AwsSettings(**values, config_path=path if path.exists() else None)
    except TypeError as err:
        known = ", ".join(f.name for f in dataclasses.fields(AwsSettings) if f.name != "config_path")
        raise InputError(f"{path}: {err}. Known keys of [aws]: {known}.") from None
    _check(settings, path)
    return settings


def _read_config(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid TOML: {err}") from None
    unknown = sorted(set(document) - {"aws"})
    if unknown:
        raise InputError(f"{path}: unknown table(s) {', '.join(unknown)}; the AWS target reads only [aws].")
    values = dict(document.get("aws", {}))
    if isinstance(values.get("instance_types"), list):
        values["instance_types"] = tuple(values["instance_types"])
    if isinstance(values.get("auth_command"), str):
        values["auth_command"] = tuple(shlex.split(values["auth_command"]))
    elif "auth_command" in values:
        values["auth_command"] = tuple(values["auth_command"])
    return values


def _check(settings: AwsSettings, path: Path) -> None:
    problems = []
    if settings.bucket and not BUCKET_NAME.match(settings.bucket):
        problems.append(f"bucket {settings.bucket!r} is not a valid S3 bucket name")
    if not 0 < settings.max_hours <= 72:
        problems.append(f"max_hours {settings.max_hours} must be more than 0 and at most 72")
    if not 8 <= settings.root_volume_gb <= 16384:
        problems.append(f"root_volume_gb {settings.root_volume_gb} must be between 8 and 16384")
    if not PREFIX.match(settings.prefix.strip("/")):
        problems.append(
            f"prefix {settings.prefix!r} may hold only letters, digits, '.', '_', '-' and single "
            "slashes (it is written into the instance role's policy)"
        )
    if not 1 <= settings.imds_hop_limit <= 64:
        problems.append(f"imds_hop_limit {settings.imds_hop_limit} must be between 1 and 64")
    if settings.repo_token_parameter and not SSM_PARAMETER.match(settings.repo_token_parameter):
        problems.append(
            f"repo_token_parameter {settings.repo_token_parameter!r} is not an SSM parameter name "
            "(e.g. /campaign/github-token)"
        )
    if settings.state_backend and not settings.state_backend.startswith("s3://"):
        problems.append(f"state_backend {settings.state_backend!r} must be s3://BUCKET/PREFIX")
    if settings.profile and settings.auth_command:
        problems.append("set either profile or auth_command, not both (a wrapper usually names the profile itself)")
    if problems:
        raise InputError(f"AWS settings ({path}): " + "; ".join(problems) + ".")
