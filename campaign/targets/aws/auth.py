"""Where AWS credentials come from, as the seeds do it, and whether they work.

In order of precedence:
  wrapper      auth_command in the config, e.g. `aws-vault exec bench --`: campaign runs the wrapper
               around a tiny Python that prints the AWS_* variables it was given, and uses those (for
               boto3 and Terraform alike); refreshed when they are about to expire
  profile      `profile` in the config, else $AWS_PROFILE (SSO profiles included)
  environment  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) exported
  default      boto3's default chain (the default profile, an instance role, ...)

`campaign doctor` prints which one is in effect and what STS says about it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from campaign.errors import PreflightRefused
from campaign.targets.aws.settings import AwsSettings

DUMP_AWS_ENV = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('AWS_')}))"
REFRESH_MARGIN_S = 300
WRAPPER_TIMEOUT_S = 300  # an MFA or SSO prompt may wait for the user


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str


class Auth:
    """The credential source of this process; `activate()` puts it into os.environ for boto3 and Terraform."""

    def __init__(self, settings: AwsSettings):
        self.settings = settings
        self._expires_at: float | None = None

    @property
    def mode(self) -> str:
        if self.settings.auth_command:
            return "wrapper"
        if self.settings.profile or os.environ.get("AWS_PROFILE"):
            return "profile"
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            return "environment"
        return "default"

    def describe(self) -> str:
        mode = self.mode
        if mode == "wrapper":
            return f"wrapper: `{' '.join(self.settings.auth_command)}` (from {self.settings.config_path})"
        if mode == "profile":
            if self.settings.profile:
                return f"profile {self.settings.profile} (from {self.settings.config_path})"
            return f"profile {os.environ['AWS_PROFILE']} (from $AWS_PROFILE)"
        if mode == "environment":
            session = " with a session token" if os.environ.get("AWS_SESSION_TOKEN") else ""
            return f"environment: AWS_ACCESS_KEY_ID {os.environ['AWS_ACCESS_KEY_ID'][:4]}…{session}"
        return "default chain of boto3 (~/.aws/config default profile, instance role, ...)"

    def activate(self) -> None:
        """Make the credentials visible to this process and its children (Terraform); refresh a wrapper's."""
        if self.settings.auth_command:
            if self._expires_at is None or time.time() > self._expires_at - REFRESH_MARGIN_S:
                self._load_from_wrapper()
        elif self.settings.profile:
            os.environ["AWS_PROFILE"] = self.settings.profile
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                os.environ.pop(name, None)  # explicit keys would win over the profile

    def identity(self) -> Identity:
        """Who STS says we are; PreflightRefused with the next step when the credentials do not work."""
        self.activate()
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = boto3.client("sts", region_name=self.settings.region).get_caller_identity()
        except (BotoCoreError, ClientError) as err:
            raise PreflightRefused(self._explain(err)) from None
        return Identity(account=answer["Account"], arn=answer["Arn"])

    def _load_from_wrapper(self) -> None:
        command = [*self.settings.auth_command, sys.executable, "-c", DUMP_AWS_ENV]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=WRAPPER_TIMEOUT_S, check=False, stdin=None
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PreflightRefused(
                f"the auth wrapper `{' '.join(self.settings.auth_command)}` could not run: "
                f"{err}. Check auth_command in {self.settings.config_path}."
            ) from None
        if result.returncode != 0:
            raise PreflightRefused(
                f"the auth wrapper `{' '.join(self.settings.auth_command)}` exited {result.returncode}: "
                f"{result.stderr.strip()[-500:]}. Run it by hand to log in, or fix auth_command in "
                f"{self.settings.config_path}."
            )
        variables = json.loads(result.stdout.strip().splitlines()[-1])
        if not variables.get("AWS_ACCESS_KEY_ID"):
            raise PreflightRefused(
                f"the auth wrapper `{' '.join(self.settings.auth_command)}` provided no "
                "AWS_ACCESS_KEY_ID; it must export credentials to the command it runs."
            )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(variables)
        expiration = variables.get("AWS_CREDENTIAL_EXPIRATION") or variables.get("AWS_SESSION_EXPIRATION")
        self._expires_at = _expiry(expiration)

    def _explain(self, err: Exception) -> str:
        name, text = type(err).__name__, str(err)
        where = f"AWS credentials ({self.describe()})"
        if "SSO" in name or ("sso" in text.lower() and "token" in text.lower()):
            profile = self.settings.profile or os.environ.get("AWS_PROFILE", "PROFILE")
            return f"{where}: the SSO session has expired or was never started: aws sso login --profile {profile}"
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            return (
                f"{where}: no credentials found. Set `profile` or `auth_command` in "
                f"{self.settings.config_path or '.campaign/config.toml'} [aws], or export AWS_PROFILE; "
                "`campaign doctor` shows what is in effect."
            )
        if name == "ProfileNotFound":
            return f"{where}: {text}. `aws configure list-profiles` lists the profiles you have."
        return f"{where} do not work: {text}. `campaign doctor` shows what is in effect."


def _expiry(text: str | None) -> float | None:
    if not text:
        return time.time() + 3600  # unknown: assume the usual hour, refresh after it
    try:
        return datetime.fromisoformat(text).astimezone(UTC).timestamp()
    except ValueError:
        return time.time() + 3600
