"""The AWS target's flow: preflight, provision, watch, collect, teardown (always, unless --keep).

`campaign plan --target aws` and `campaign run --target aws` come here; so do `down` and `doctor`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from campaign.errors import CampaignError, Interrupted, StageFailed
from campaign.planning.plan import Plan
from campaign.planning.verdict import Verdict
from campaign.prebuilt.artifact import plan_build_source
from campaign.preflight.planner import make_plan
from campaign.run.cache import plan_cache
from campaign.run.record import RunRecord, new_run_id
from campaign.store import open_store
from campaign.system.clock import now_iso
from campaign.targets.aws import checks, infra
from campaign.targets.aws.auth import Auth, Identity
from campaign.targets.aws.costs import cost_lines
from campaign.targets.aws.fleet_preflight import FleetReport, FleetRequest, check_fleet
from campaign.targets.aws.settings import AwsSettings, load_settings
from campaign.targets.aws.tf import TerraformRunner
from campaign.targets.aws.userdata import UserdataParams, render_userdata

BUCKET_PLACEHOLDER = "campaign-ACCOUNT-ID-{region}"


@dataclass(frozen=True)
class AwsOptions:
    """What the command line says; everything else comes from AwsSettings."""

    campaign_file: Path
    selection: str | None = None
    state_dir: Path | None = None
    keep_going: bool = False
    region: str | None = None
    instance_type: str | None = None
    keep: bool | None = None
    store_overrides: tuple[tuple[str, str], ...] = ()  # bucket and prefix from --store s3://…
    var_overrides: tuple[tuple[str, Any], ...] = ()  # --var NAME=VALUE
    sides: tuple[tuple[str, str], ...] = ()  # `campaign ab`: (side name, commit)
    order_seed: int | None = None
    instance_types: tuple[str, ...] = ()  # --instance-types: the sweep's fleet (default: the one instance type)
    nodes: int = 1
    max_cost: float | None = None


@dataclass(frozen=True)
class Preflight:
    plan: Plan
    root: Path
    settings: AwsSettings
    auth: Auth
    repo_url: str
    bucket_exists: bool
    state_dir: Path | None = None
    fleet: FleetReport | None = None


def default_bucket(identity: Identity | None, region: str) -> str:
    return f"campaign-{identity.account}-{region}" if identity else BUCKET_PLACEHOLDER.format(region=region)


def load(options: AwsOptions) -> tuple[Plan, Path, AwsSettings]:
    plan, root = make_plan(
        options.campaign_file, options.selection, allow_dirty=False, target="aws", overrides=dict(options.var_overrides)
    )
    settings = load_settings(
        root,
        region=options.region,
        instance_type=options.instance_type or next(iter(options.instance_types), None),
        keep=options.keep,
        **dict(options.store_overrides),
    )
    return plan, root, settings


def preflight(options: AwsOptions) -> Preflight:
    """The local plan and smoke gate, then credentials, the bucket and the pushed commit, as verdicts."""
    plan, root, settings = load(options)
    auth = Auth(settings)
    credentials, identity = checks.credentials_verdict(auth)
    if not settings.bucket:
        settings = settings.with_bucket(default_bucket(identity, settings.region))
    repo_url = checks.remote_url(root, settings.repo_url)
    verdicts = [credentials]
    bucket_exists = True
    if identity is not None:
        bucket = checks.bucket_verdict(settings.store_url(), settings.region)
        verdicts.append(bucket.verdict)
        bucket_exists = bucket.exists
    else:
        verdicts.append(Verdict("results bucket", False, "not checked: the AWS credentials do not work"))
    verdicts.append(checks.pushed_verdict(root, plan.commit, repo_url))
    verdicts += [
        replace(checks.pushed_verdict(root, commit, repo_url), check=f"side {name} pushed")
        for name, commit in options.sides
    ]  # the instance fetches each side's commit from the remote
    verdicts.append(checks.terraform_version_verdict())
    verdicts += [
        v
        for v in (
            checks.clone_verdict(root, settings.repo_url, settings.repo_token_parameter),
            checks.imds_verdict(settings.imds_hop_limit),
        )
        if v is not None
    ]
    store = open_store(settings.store_url()) if identity is not None and bucket_exists else None
    found, report = check_fleet(
        plan, settings, fleet_request(options, settings), online=identity is not None, store=store
    )
    plan = replace(plan, verdicts=plan.verdicts + tuple(verdicts) + tuple(found))
    if store is not None:  # the cache keys are computed here: a tool of another version on the instance misses
        plan = plan_cache(plan_build_source(plan, settings.store_url()), settings.store_url(), root)
    return Preflight(plan, root, settings, auth, repo_url, bucket_exists, options.state_dir, report)


def fleet_request(options: AwsOptions, settings: AwsSettings) -> FleetRequest:
    """--instance-types A,B (the sweep's fleet) and the instance type `run` provisions (the first of them unless
    --instance-type names another); nodes of each; --max-cost."""
    types = tuple(dict.fromkeys((*options.instance_types, settings.instance_type)))
    return FleetRequest(types, options.nodes, options.max_cost)


def terraform_plan_verdict(checked: Preflight, *, module_dir: Path = infra.MODULE_DIR) -> Verdict:
    """Terraform's own plan for a run like the next one, in a throwaway workspace with local state:
    what `run` would create. Nothing is applied and no state is kept."""
    record = new_record(
        checked.plan, checked.root, new_run_id(checked.plan.commit), checked.settings.store_url(), keep_going=False
    )
    user_data = instance_userdata(checked.settings, record, checked.repo_url, checked.plan)
    variables = infra.module_variables(
        checked.settings,
        run_id=record.run_id,
        campaign=record.campaign,
        commit=record.commit or "",
        user_data=user_data,
        create_bucket=not checked.bucket_exists,
    )
    with tempfile.TemporaryDirectory(prefix="campaign-plan-") as scratch:
        workdir = Path(scratch) / "workspace"
        infra.prepare_workspace(workdir, variables, module_dir=module_dir)
        try:
            checked.auth.activate()
            runner = TerraformRunner(workdir)
            runner.init()
            summary = runner.plan()
        except CampaignError as error:
            return Verdict("terraform plan", False, f"terraform could not plan the run: {error}")
    return Verdict("terraform plan", True, f"{summary} (what `campaign run --target aws` will create)")


def userdata_params(settings: AwsSettings, record: RunRecord, repo_url: str) -> UserdataParams:
    return UserdataParams(
        run_id=record.run_id,
        campaign=record.campaign,
        commit=record.commit or "",
        repo_url=repo_url,
        store_url=record.store,
        region=settings.region,
        watchdog_minutes=settings.watchdog_minutes,
        install_spec=settings.install_spec,
        repo_token_parameter=settings.repo_token_parameter or "",
    )


def instance_userdata(
    settings: AwsSettings, record: RunRecord, repo_url: str, plan: Plan, *, take_over: bool = False
) -> str:
    """The script the run's instance boots with: the one place its parameters are assembled."""
    params = replace(userdata_params(settings, record, repo_url), take_over=take_over)
    return render_userdata(with_toolchain(params, plan))


def with_toolchain(params: UserdataParams, plan: Plan) -> UserdataParams:
    """params, installing the Rust toolchain when the plan compiles on the instance."""
    return replace(params, rust_toolchain=builds_here(plan))


def builds_here(plan: Plan) -> bool:
    """The plan has a build stage that will compile on the instance (no usable prebuilt, or not looked up)."""
    stage = plan.spec.build_stage
    return stage is not None and not any(
        p.run.stage.name == stage.name and p.source.startswith("fetch prebuilt") for p in plan.runs
    )


def new_record(
    plan: Plan,
    root: Path,
    run_id: str,
    store_url: str,
    *,
    keep_going: bool,
    sides: dict[str, str] | None = None,
    order_seed: int | None = None,
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        campaign=plan.spec.name,
        campaign_file=plan.spec.path.relative_to(root).as_posix(),
        campaign_digest=plan.spec.digest,
        commit=plan.commit,
        dirty=False,
        selection=plan.selection_text,
        target="aws",
        store=store_url,
        created_at=now_iso(),
        keep_going=keep_going,
        vars=dict(plan.spec.vars),
        sides=dict(sides or {}),
        order_seed=order_seed,
    )


def show_userdata(options: AwsOptions) -> str:
    """The exact script `run` would pass to the instance, for a new run id; needs no credentials."""
    plan, root, settings = load(options)
    if not settings.bucket:
        settings = settings.with_bucket(default_bucket(None, settings.region))
    record = new_record(plan, root, new_run_id(plan.commit), settings.store_url(), keep_going=options.keep_going)
    return instance_userdata(settings, record, checks.remote_url(root, settings.repo_url), plan)


def describe(
    settings: AwsSettings, repo_url: str, *, bucket_exists: bool, fleet: FleetReport | None = None
) -> list[str]:
    market = "spot" if settings.spot else "on-demand"
    bucket = settings.bucket if bucket_exists else f"{settings.bucket} (created, and kept after the run)"
    types = fleet.request.types if fleet else (settings.instance_type,)
    nodes = fleet.request.nodes if fleet else 1
    return [
        f"aws: region {settings.region} · {nodes} × {', '.join(types)} {market} · AL2023 · "
        f"{settings.root_volume_gb} GiB encrypted gp3 · watchdog {settings.max_hours:g} h",
        f"  store {settings.store_url()} (bucket {bucket}); the instance clones {repo_url}",
        "  terraform creates: a security group with no inbound rule, an IAM role limited to the run's prefix "
        "and SSM, the instance",
        "  and destroys them when the run ends, also after a failure or Ctrl-C"
        + (" — not this time: --keep" if settings.keep else " (--keep leaves them; `campaign down RUN` removes them)"),
        *cost_lines(list(fleet.costs) if fleet else []),
    ]


def raise_for(state: str, reason: str, run_id: str, settings: AwsSettings) -> None:
    """The error that decides the exit code of a run that did not succeed on the instance."""
    where = f"--store {settings.store_url()}"
    if state == "succeeded":
        return
    if state == "interrupted":
        raise Interrupted(
            f"run {run_id} was interrupted on the instance: {reason}. "
            f"`campaign status {run_id} {where}` shows where it stopped."
        )
    raise StageFailed(
        f"run {run_id} did not succeed ({state}): {reason}.\n"
        f"`campaign status {run_id} {where}` shows every stage run; "
        f"`campaign logs {run_id} {where}` the runner's events, and the instance's own log is "
        f"{settings.store_url()}/runs/{run_id}/logs/bootstrap.log."
    )
