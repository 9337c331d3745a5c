"""The AWS target's preflight verdicts: credentials, the results bucket, the commit the instance clones.

Each check returns a campaign.preflight.smoke.Verdict, so `campaign plan --target aws` shows them next to
the smoke gate and `campaign run --target aws` refuses (exit 3) on any that fails.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from campaign.errors import CampaignError
from campaign.planning.verdict import Verdict
from campaign.targets.aws.auth import Auth, Identity

SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>.+)$")
URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
# terraform/versions.tf requires it: the S3 backend's use_lockfile (state_backend) is GA from 1.11.
MIN_TERRAFORM = (1, 11)
MIN_TERRAFORM_TEXT = "Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"


@dataclass(frozen=True)
class BucketState:
    exists: bool
    verdict: Verdict


def credentials_verdict(auth: Auth) -> tuple[Verdict, Identity | None]:
    try:
        identity = auth.identity()
    except CampaignError as err:
        return Verdict("aws credentials", False, str(err)), None
    return Verdict("aws credentials", True, f"{auth.describe()}: {identity.arn} (account {identity.account})"), identity


def bucket_verdict(store_url: str, region: str) -> BucketState:
    """The bucket exists and takes a probe object (write, read back, delete) — or it will be created."""
    import boto3
    from botocore.exceptions import ClientError

    from campaign.store import open_store

    bucket = store_url.removeprefix("s3://").split("/", 1)[0]
    try:
        boto3.client("s3", region_name=region).head_bucket(Bucket=bucket)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchBucket", "NotFound"):
            return BucketState(
                False,
                Verdict(
                    "results bucket",
                    True,
                    f"{bucket} does not exist yet: Terraform creates it (versioned, "
                    "encrypted, public access blocked) and it is kept after the run",
                ),
            )
        return BucketState(
            True,
            Verdict(
                "results bucket",
                False,
                f"{bucket} is not reachable ({code}): {err}. It may belong to another "
                "account; set bucket in .campaign/config.toml [aws] to one of yours.",
            ),
        )
    try:
        open_store(store_url).probe()
    except CampaignError as err:
        return BucketState(True, Verdict("results bucket", False, f"{store_url} is not writable: {err}"))
    return BucketState(
        True, Verdict("results bucket", True, f"{store_url} is writable (probe object written, read back and deleted)")
    )


def remote_url(root: Path, configured: str | None) -> str:
    """The URL the instance clones: repo_url from the config, else `git remote get-url origin` (scp-like
    ssh addresses become https: the instance has no SSH key). Never with a credential in it: the URL
    lands in the userdata, the Terraform files and the instance's log (see without_credentials)."""
    if configured:
        return without_credentials(configured)
    result = subprocess.run(
        ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, check=False
    )
    url = result.stdout.strip()
    match = SCP_LIKE.match(url)
    if match:
        return f"https://{match['host']}/{match['path']}"
    if url.startswith("ssh://"):
        rest = url.removeprefix("ssh://").split("@", 1)[-1]
        host, _, path = rest.partition("/")
        return f"https://{host.split(':')[0]}/{path}"
    return without_credentials(url)


def without_credentials(url: str) -> str:
    """https://oauth2:TOKEN@host/path -> https://host/path: whatever sits before '@' in the authority goes."""
    return URL_USERINFO.sub(lambda match: match["scheme"], url, count=1)


def had_credentials(root: Path, configured: str | None) -> bool:
    url = (
        configured
        or subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    return bool(URL_USERINFO.match(url))


def clone_verdict(root: Path, configured: str | None, token_parameter: str | None) -> Verdict | None:
    """A warning when the remote carried a credential: the instance never gets it (and says how instead)."""
    if not had_credentials(root, configured):
        return None
    how = (
        f"the instance reads its token from SSM parameter {token_parameter}"
        if token_parameter
        else "a private repository needs repo_token_parameter in .campaign/config.toml [aws] (an SSM SecureString "
        "holding the token; see the README, 'The AWS target')"
    )
    return Verdict(
        "clone credentials",
        True,
        f"the repository URL carries a credential; it was removed and never leaves this machine: {how}",
        warning=True,
    )


def terraform_version_verdict(binary: str = "terraform") -> Verdict:
    """The installed Terraform is new enough for terraform/ (versions.tf); names the version needed."""
    import json

    try:
        result = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, timeout=60, check=False)
        version = json.loads(result.stdout)["terraform_version"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as err:
        return Verdict(
            "terraform", False, f"`{binary} version -json` did not answer ({err}); install {MIN_TERRAFORM_TEXT} on PATH"
        )
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if found < MIN_TERRAFORM:
        return Verdict(
            "terraform",
            False,
            f"terraform {version} is too old: terraform/versions.tf needs "
            f"{MIN_TERRAFORM_TEXT} (the S3 state lock, use_lockfile, is GA from 1.11)",
        )
    return Verdict("terraform", True, f"terraform {version} (>= {'.'.join(map(str, MIN_TERRAFORM))} needed)")


def imds_verdict(hop_limit: int) -> Verdict | None:
    """A hop limit above 1 lets containers started by stages read the instance role's credentials."""
    if hop_limit <= 1:
        return None
    return Verdict(
        "instance metadata",
        True,
        f"imds_hop_limit = {hop_limit}: containers started by stages can "
        "reach IMDS and so the instance role's credentials (write access to the run's prefix). Remove "
        "imds_hop_limit from .campaign/config.toml [aws] unless a stage needs it.",
        warning=True,
    )


def pushed_verdict(root: Path, commit: str | None, url: str) -> Verdict:
    """The commit must be reachable from a remote-tracking branch: the instance clones it from the remote."""
    if not url:
        return Verdict(
            "commit pushed",
            False,
            "the repository has no remote 'origin', so an instance has nothing to clone",
            (
                "fix: git remote add origin URL && git push -u origin HEAD, or set repo_url in "
                ".campaign/config.toml [aws]",
            ),
        )
    if commit is None:
        return Verdict("commit pushed", False, "the repository has no commit yet")
    result = subprocess.run(
        ["git", "-C", str(root), "branch", "-r", "--contains", commit], capture_output=True, text=True, check=False
    )
    branches = [line.strip() for line in result.stdout.splitlines() if line.strip() and "->" not in line]
    if result.returncode == 0 and branches:
        return Verdict("commit pushed", True, f"{commit[:12]} is on {branches[0]}; the instance clones {url}")
    current = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    branch = current if current and current != "HEAD" else "BRANCH"
    return Verdict(
        "commit pushed",
        False,
        f"{commit[:12]} is on no remote-tracking branch, so the instance could not clone it from {url}",
        (f"fix: git push origin {shlex.quote(branch)} (then `git fetch` if the remote was pushed from elsewhere)",),
    )
