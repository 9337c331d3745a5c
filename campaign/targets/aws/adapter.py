"""The AWS target behind the Target interface: preflight (credentials, bucket, pushed commit),
provision (Terraform), watch (the journal in S3), collect (verified outputs), teardown (destroy)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from campaign.errors import CampaignError, InputError, PreflightRefused
from campaign.planning.plan import Plan
from campaign.run.dirs import state_dir_for
from campaign.run.record import RunRecord, new_run_id
from campaign.store import open_store
from campaign.system.git import find_root
from campaign.targets.aws import commands
from campaign.targets.aws import target as aws_flow  # through the module: one place assembles the userdata
from campaign.targets.aws.costs import cost_json
from campaign.targets.aws.fleet_preflight import FleetReport
from campaign.targets.aws.session import RunSession
from campaign.targets.aws.target import (
    AwsOptions,
    Preflight,
    describe,
    new_record,
    preflight,
    raise_for,
    show_userdata,
    terraform_plan_verdict,
)
from campaign.targets.aws.watch import WatchResult
from campaign.targets.base import Out, Outcome, Prepared, RunRequest

ALLOW_DIRTY_REFUSED = (
    "--allow-dirty is refused for the AWS target: the instance clones the commit, not your "
    "working tree. Commit (and push) what the run needs, or rehearse locally with --target local."
)


class AwsTarget:
    name = "aws"

    def __init__(self) -> None:
        self._sessions: dict[str, RunSession] = {}
        self._results: dict[str, WatchResult] = {}

    def preflight(self, request: RunRequest, *, for_plan: bool = False) -> Prepared:
        checked = preflight(aws_options(request))
        if for_plan and not checked.plan.refusals:  # Terraform needs working credentials; say so rather than half
            checked = replace(
                checked, plan=replace(checked.plan, verdicts=checked.plan.verdicts + (terraform_plan_verdict(checked),))
            )
        return Prepared(checked.plan, checked.root, checked.settings.store_url(), checked)

    def describe(self, prepared: Prepared) -> list[str]:
        checked: Preflight = prepared.context
        return describe(checked.settings, checked.repo_url, bucket_exists=checked.bucket_exists, fleet=checked.fleet)

    def describe_json(self, prepared: Prepared) -> dict[str, Any]:
        checked: Preflight = prepared.context
        settings = checked.settings
        return {
            "aws": {
                "region": settings.region,
                "instance_type": settings.instance_type,
                "spot": settings.spot,
                "store": settings.store_url(),
                "repo_url": checked.repo_url,
                "max_hours": settings.max_hours,
                "create_bucket": not checked.bucket_exists,
                **fleet_json(checked.fleet),
            }
        }

    def new_record(self, prepared: Prepared, request: RunRequest) -> RunRecord:
        checked: Preflight = prepared.context
        return new_record(
            checked.plan,
            checked.root,
            new_run_id(checked.plan.commit),
            prepared.store_url,
            keep_going=request.keep_going,
            sides=dict(request.sides),
            order_seed=request.order_seed,
        )

    def provision(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        checked: Preflight = prepared.context
        session = RunSession(
            record=record,
            plan=checked.plan,
            settings=checked.settings,
            auth=checked.auth,
            state_dir=state_dir_for(checked.root, checked.state_dir),
            user_data=aws_flow.instance_userdata(checked.settings, record, checked.repo_url, checked.plan),
            create_bucket=not checked.bucket_exists,
            out=out,
        )
        self._sessions[record.run_id] = session
        session.provision()

    def execute(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        """Nothing to do here: the instance's userdata clones the commit and starts `campaign agent`."""

    def watch(self, prepared: Prepared, record: RunRecord, out: Out) -> Outcome:
        result = self._results[record.run_id] = self._sessions[record.run_id].watch()
        return Outcome(result.state, result.reason)

    def collect(self, prepared: Prepared, record: RunRecord, outcome: Outcome, out: Out) -> None:
        self._sessions[record.run_id].collect(self._results[record.run_id])
        if record.sides and outcome.state == "succeeded":  # the instance's agent stored the comparison
            from campaign.results.command import ab_comparisons
            from campaign.results.render import as_text

            for comparison in ab_comparisons(open_store(prepared.store_url), record.run_id):
                out(as_text(comparison))
            out(f"comparison: {open_store(prepared.store_url).where(record.keys.comparison)}")

    def teardown(self, prepared: Prepared, record: RunRecord, out: Out) -> None:
        session = self._sessions.pop(record.run_id, None)
        if session is not None:
            session.teardown()

    def finish(self, prepared: Prepared, record: RunRecord, outcome: Outcome) -> None:
        checked: Preflight = prepared.context
        raise_for(outcome.state, outcome.reason, record.run_id, checked.settings)

    def resume(self, run_id: str, request: RunRequest, out: Out) -> str:
        """`campaign resume RUN --target aws`: a replacement instance whose agent resumes the run."""
        from campaign.targets.aws.resume import resume_on_aws

        result, settings = resume_on_aws(
            run_id, store_overrides=_store_overrides(request.store), state_dir=request.state_dir, out=out
        )
        raise_for(result.state, result.reason, run_id, settings)
        return run_id

    def resume_unfinished(self, request: RunRequest, out: Out) -> str | None:
        raise InputError(
            "--resume is not available with --target aws yet: start a new run with `campaign run --target aws`."
        )

    def resume_plan(self, run_id: str, request: RunRequest) -> Plan:
        raise InputError("plan --resume is not available with --target aws yet.")

    def show_userdata(self, request: RunRequest) -> str:
        """The exact script `run` would pass to the instance, for a new run id; needs no credentials."""
        return show_userdata(aws_options(request))

    def down(self, run_id: str, state_dir: Path | None, out: Out) -> None:
        root = find_root(Path.cwd())
        commands.down(run_id, root=root, state_dir=state_dir_for(root, state_dir), out=out)

    def doctor(self, out: Out) -> int:
        return 0 if commands.doctor(_root_or_cwd(), out=out) else PreflightRefused.exit_code


def aws_options(request: RunRequest) -> AwsOptions:
    if request.allow_dirty:
        raise PreflightRefused(ALLOW_DIRTY_REFUSED)
    options = request.options
    return AwsOptions(
        campaign_file=request.campaign_file,
        selection=request.selection,
        state_dir=request.state_dir,
        keep_going=request.keep_going,
        region=options.get("region"),
        instance_type=options.get("instance_type"),
        keep=options.get("keep"),
        store_overrides=tuple(sorted(_store_overrides(request.store).items())),
        var_overrides=tuple(request.vars.items()),
        sides=tuple(request.sides.items()),
        order_seed=request.order_seed,
        instance_types=tuple(options.get("instance_types") or ()),
        nodes=int(options.get("nodes", 1) or 1),
        max_cost=options.get("max_cost"),
    )


def _store_overrides(store: str | None) -> dict[str, str]:
    if store is None:
        return {}
    if not store.startswith("s3://"):
        raise InputError(
            f"--store {store}: the AWS target stores in S3 (s3://BUCKET/PREFIX); the instance cannot "
            "write to a folder on this machine."
        )
    bucket, _, prefix = store.removeprefix("s3://").partition("/")
    return {"bucket": bucket, "prefix": prefix.strip("/")}


def fleet_json(report: FleetReport | None) -> dict[str, Any]:
    """The sweep's fleet and its cost in `plan --json` (under aws)."""
    if report is None:
        return {}
    return {
        "instance_types": list(report.request.types),
        "nodes": report.request.nodes,
        "max_cost": report.request.max_cost,
        "cost": cost_json(list(report.costs)),
    }


def _root_or_cwd() -> Path:
    try:
        return find_root(Path.cwd())
    except CampaignError:
        return Path.cwd()
