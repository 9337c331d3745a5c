"""The command-line side of the AWS target: what `campaign plan|run --target aws`, `down` and `doctor` call."""

from __future__ import annotations

import json
from pathlib import Path

from campaign.errors import InputError, PreflightRefused

ALLOW_DIRTY_REFUSED = ("--allow-dirty is refused for the AWS target: the instance clones the commit, not your "
                       "working tree. Commit (and push) what the run needs, or rehearse locally with --target local.")


def _store_overrides(store: str | None) -> dict:
    if store is None:
        return {}
    if not store.startswith("s3://"):
        raise InputError(f"--store {store}: the AWS target stores in S3 (s3://BUCKET/PREFIX); the instance cannot "
                         "write to a folder on this machine.")
    bucket, _, prefix = store.removeprefix("s3://").partition("/")
    return {"bucket": bucket, "prefix": prefix.strip("/")}


def aws_plan(selection, campaign_file: Path, *, as_json: bool, allow_dirty: bool, instance_type, region,
             show_userdata: bool, out) -> int:
    """Print the plan with the AWS verdicts (or only the userdata); the exit code."""
    from dataclasses import replace

    from campaign.planning.plan import format_plan
    from campaign.targets.aws.target import (
        AwsOptions,
        describe,
        preflight,
        terraform_plan_verdict,
    )
    from campaign.targets.aws.target import show_userdata as render_shown

    if allow_dirty:
        raise PreflightRefused(ALLOW_DIRTY_REFUSED)
    options = AwsOptions(campaign_file=campaign_file, selection=selection, instance_type=instance_type,
                         region=region)
    if show_userdata:
        out(render_shown(options).rstrip("\n"))
        return 0
    checked = preflight(options)
    if not checked.plan.refusals:  # Terraform needs working credentials; say so rather than plan half
        checked = replace(checked, plan=replace(checked.plan, verdicts=checked.plan.verdicts
                                                 + (terraform_plan_verdict(checked),)))
    lines = describe(checked.settings, checked.repo_url, bucket_exists=checked.bucket_exists)
    if as_json:
        document = checked.plan.to_dict()
        document["aws"] = {"region": checked.settings.region, "instance_type": checked.settings.instance_type,
                           "spot": checked.settings.spot, "store": checked.settings.store_url(),
                           "repo_url": checked.repo_url, "max_hours": checked.settings.max_hours,
                           "create_bucket": not checked.bucket_exists}
        out(json.dumps(document, indent=2))
    else:
        out(format_plan(checked.plan) + "\n\n" + "\n".join(lines))
    return PreflightRefused.exit_code if checked.plan.refusals else 0


def aws_run(selection, campaign_file: Path, *, store, keep_going: bool, allow_dirty: bool, state_dir, instance_type,
            region, keep, resume: bool, out) -> str:
    from campaign.targets.aws.target import AwsOptions, run_aws

    if allow_dirty:
        raise PreflightRefused(ALLOW_DIRTY_REFUSED)
    if resume:
        raise InputError("--resume is not available with --target aws yet: start a new run with "
                         "`campaign run --target aws`.")
    options = AwsOptions(campaign_file=campaign_file, selection=selection, state_dir=state_dir,
                         keep_going=keep_going, region=region, instance_type=instance_type, keep=keep,
                         store_overrides=tuple(sorted(_store_overrides(store).items())))
    return run_aws(options, out=out)


def aws_down(run_id: str, *, state_dir, out) -> None:
    from campaign.system.git import find_root
    from campaign.targets.aws.commands import down
    from campaign.targets.local.flow import state_dir_for

    root = find_root(Path.cwd())
    down(run_id, root=root, state_dir=state_dir_for(root, state_dir), out=out)


def aws_doctor(*, out) -> int:
    from campaign.errors import CampaignError
    from campaign.system.git import find_root
    from campaign.targets.aws.commands import doctor

    try:
        root = find_root(Path.cwd())
    except CampaignError:
        root = Path.cwd()
    return 0 if doctor(root, out=out) else PreflightRefused.exit_code
