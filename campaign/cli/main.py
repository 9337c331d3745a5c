"""The `campaign` command line. Exit codes come from the exception classes in campaign.errors.

A target's own module is imported only when the target is chosen (campaign.targets.registry), and
boto3 only when an S3 store is opened, so `campaign plan` stays fast.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from campaign.cli.lazy import LazyGroup
from campaign.cli.options import (
    DEFAULT_CAMPAIGN_FILE,
    campaign_file_option,
    fleet_options,
    nodes_option,
    open_store_for,
    run_id_argument,
    state_dir_option,
    store_option,
    target_options,
    valid_run_id,
    var_option,
)
from campaign.cli.sweep_options import stop_on_failure_option
from campaign.errors import CampaignError, PreflightRefused
from campaign.planning.plan import Plan, format_plan
from campaign.prebuilt.command import PrebuildOptions
from campaign.prebuilt.command import prebuild as run_prebuild
from campaign.run.resolve import resolve_run_id
from campaign.run.sweep import is_sweep_id
from campaign.spec.variables import parse_var_options
from campaign.targets.base import RunRequest, Target, drive
from campaign.targets.registry import get_cloud_target, get_cluster_target, get_target

LAZY_COMMANDS = {
    "status": "campaign.cli.inspect_commands:status",
    "logs": "campaign.cli.inspect_commands:logs",
    "runs": "campaign.cli.inspect_commands:runs",
    "verify": "campaign.cli.inspect_commands:verify",
    "compare": "campaign.cli.results_commands:compare",
    "report": "campaign.cli.results_commands:report",
    "ab": "campaign.cli.results_commands:ab",
    "cluster": "campaign.cli.cluster:cluster",
    "cache": "campaign.cli.cache_commands:cache",  # the data cache
    "gc": "campaign.cli.cache_commands:gc",  # local leftovers of finished runs
}


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="campaign")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run benchmark campaigns locally, or on AWS, without losing data."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("selection", required=False)
@campaign_file_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as a JSON document.")
@click.option("--allow-dirty", is_flag=True, help="Report uncommitted files as a warning instead of a refusal.")
@click.option(
    "--resume",
    "resume_run",
    metavar="RUN",
    default=None,
    callback=valid_run_id,
    help="Show what `campaign resume RUN` would do: which stage runs are done and verified.",
)
@store_option
@target_options
@fleet_options
@click.option("--show-userdata", is_flag=True, help="AWS target: print the exact userdata script of the instance.")
@var_option
def plan(
    selection: str | None,
    campaign_file: Path,
    as_json: bool,
    allow_dirty: bool,
    resume_run: str | None,
    store: str | None,
    target: str,
    instance_type: str | None,
    region: str | None,
    instance_types: tuple[str, ...],
    max_cost: float | None,
    show_userdata: bool,
    var_texts: tuple[str, ...],
) -> None:
    """Show what `run` would do, and the preflight verdicts.

    SELECTION is e.g. sf1,sf10; nothing runs. Exits 3 when preflight would refuse the run, 0 otherwise.
    """
    fleet = _sweep_types(instance_types, instance_type, campaign_file, target)  # or the file's matrix:
    request = RunRequest(
        campaign_file=campaign_file,
        selection=selection,
        store=store,
        allow_dirty=allow_dirty,
        options=aws_options(instance_type, region, fleet, max_cost),
        vars=parse_var_options(var_texts),
    )
    if show_userdata:
        click.echo(get_cloud_target("aws").show_userdata(request).rstrip("\n"))
        return
    chosen = get_target(target)
    if resume_run:
        resume_run = resolve_run_id(open_store_for(store), resume_run)
        _show_plan(chosen.resume_plan(resume_run, request), [], {}, as_json=as_json)
        return
    prepared = chosen.preflight(request, for_plan=True)
    _show_plan(prepared.plan, chosen.describe(prepared), chosen.describe_json(prepared), as_json=as_json)
    if prepared.plan.refusals:
        raise click.exceptions.Exit(PreflightRefused.exit_code)  # the plan is shown; `run` would refuse it


def aws_options(
    instance_type: str | None, region: str | None, instance_types: tuple[str, ...], max_cost: float | None
) -> dict[str, Any]:
    """RunRequest.options for the AWS target; instance_types is the sweep's fleet (empty: the one instance type)."""
    return {"instance_type": instance_type, "region": region, "instance_types": instance_types, "max_cost": max_cost}


def _sweep_types(*args: Any, **kwargs: Any) -> tuple[str, ...]:
    """campaign.cli.sweep_commands.sweep_types, imported when a plan or run asks (not for every command)."""
    from campaign.cli.sweep_commands import sweep_types

    return sweep_types(*args, **kwargs)


def _run_sweep(*args: Any) -> None:
    from campaign.cli.sweep_commands import run_sweep

    run_sweep(*args)


def _show_plan(the_plan: Plan, target_lines: list[str], target_json: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**the_plan.to_dict(), **target_json}, indent=2))
    else:
        click.echo("\n\n".join(filter(None, [format_plan(the_plan), "\n".join(target_lines)])))


@cli.command(
    epilog="SELECTION defaults to the campaign's default_selection. --instance-types A,B,C (AWS target) runs a "
    "sweep: the campaign once per type, one after another (README: Sweeps)."
)
@click.argument("selection", required=False)
@campaign_file_option
@store_option
@click.option("--keep-going", is_flag=True, help="After a failure, still run stage runs that do not depend on it.")
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Local rehearsal only: run the working tree as it is, uncommitted files included.",
)
@state_dir_option
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the newest unfinished run of this commit, campaign file and selection, if any.",
)
@click.option("--take-over", is_flag=True, help="With --resume: take the lease of an agent that stopped heartbeating.")
@click.option(
    "--sync-interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between uploads of a growing incremental results file.",
)
@target_options
@fleet_options
@click.option(
    "--keep",
    is_flag=True,
    default=None,
    help="AWS target: leave the instance and role after the run (they bill; `campaign down RUN`).",
)
@click.option(
    "--cluster",
    "cluster_name",
    metavar="NAME",
    default=None,
    help="Run on a kept cluster (`campaign cluster up`); refused when it runs another commit.",
)
@nodes_option
@var_option
@stop_on_failure_option
def run(
    selection: str | None,
    campaign_file: Path,
    store: str | None,
    keep_going: bool,
    allow_dirty: bool,
    state_dir: Path | None,
    resume: bool,
    take_over: bool,
    sync_interval: float,
    target: str,
    instance_type: str | None,
    region: str | None,
    instance_types: tuple[str, ...],
    max_cost: float | None,
    keep: bool | None,
    cluster_name: str | None,
    nodes: int | None,
    var_texts: tuple[str, ...],
    stop_on_failure: bool,
) -> None:
    """Run the campaign, on this machine or on EC2."""
    request = RunRequest(
        campaign_file=campaign_file,
        selection=selection,
        store=store,
        keep_going=keep_going,
        allow_dirty=allow_dirty,
        state_dir=state_dir,
        resume=resume,
        take_over=take_over,
        sync_interval_s=sync_interval,
        options={"keep": keep, "cluster": cluster_name, **aws_options(instance_type, region, instance_types, max_cost)},
        vars=parse_var_options(var_texts),
    )
    if types := _sweep_types(instance_types, instance_type, campaign_file, target, cluster=cluster_name, nodes=nodes):
        return _run_sweep(request, target, types, stop_on_failure, nodes)
    chosen = _target_or_cluster(target, cluster_name, state_dir)
    if not resume or chosen.resume_unfinished(request, click.echo) is None:
        drive(chosen, request, click.echo)


def _target_or_cluster(target: str, cluster_name: str | None, state_dir: Path | None) -> Target:
    """--cluster NAME: the local cluster target or the AWS one, as the cluster's record says; else --target."""
    if not cluster_name:
        return get_target(target)
    from campaign.run.dirs import state_dir_for
    from campaign.system.git import find_root

    try:
        root = find_root(Path.cwd())
    except CampaignError:
        root = Path.cwd()
    return get_cluster_target(state_dir_for(root, state_dir), cluster_name)


@cli.command()
@campaign_file_option
@store_option
@click.option(
    "--in-place",
    is_flag=True,
    help="Build in this repository, which must be a clean checkout of HEAD, instead of a fresh clone "
    "(CI: where the cargo cache is).",
)
@state_dir_option
def prebuild(campaign_file: Path, store: str | None, in_place: bool, state_dir: Path | None) -> None:
    """Build HEAD once and store it as a prebuilt.

    Builds the build stage and stores it as prebuilt/<commit>/<arch>/, so runs fetch it instead of building.
    Exits 0 when stored, already stored, or when the campaign has nothing to build.
    """
    run_prebuild(
        PrebuildOptions(campaign_file=campaign_file, store=store, in_place=in_place, state_dir=state_dir),
        out=lambda line: click.echo(line),
    )


@cli.command()
@run_id_argument
@store_option
@click.option(
    "--take-over",
    is_flag=True,
    help="Take the lease of an agent on another machine whose heartbeat is older than 120 s.",
)
@state_dir_option
@click.option("--cluster", "cluster_name", metavar="NAME", default=None, help="Resume a run made with --cluster NAME.")
@click.option(
    "--target",
    type=click.Choice(["local", "aws"]),
    default="local",
    show_default=True,
    help="aws: a replacement instance resumes a run whose instance died.",
)
def resume(
    run_id: str, store: str | None, take_over: bool, state_dir: Path | None, cluster_name: str | None, target: str
) -> None:
    """Continue a run or a sweep after a crash, Ctrl-C or outage.

    Verified stage runs of RUN_ID are kept, the rest runs, at the run's own commit (--target aws: on a
    replacement instance). A sweep id (sweep-…) continues the sweep from its first unfinished instance type.
    """
    if is_sweep_id(run_id):
        from campaign.cli.sweep_commands import resume_sweep

        return resume_sweep(run_id, open_store_for(store), state_dir, take_over=take_over)
    request = RunRequest(
        campaign_file=Path(DEFAULT_CAMPAIGN_FILE),
        store=store,
        state_dir=state_dir,
        take_over=take_over,
        options={"cluster": cluster_name},
    )
    chosen = _target_or_cluster(target, cluster_name, state_dir)
    if chosen.name != "cluster-aws":  # an AWS cluster's runs are in its own store: the target reads it
        run_id = resolve_run_id(open_store_for(store), run_id)
    chosen.resume(run_id, request, click.echo)


@cli.command()
@run_id_argument
@click.option("--store", required=True, metavar="DIR|s3://BUCKET/PREFIX", help="The store holding run.json.")
@click.option(
    "--checkout",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    show_default=True,
    help="The clean clone of the run's commit.",
)
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".campaign"), show_default=True)
@click.option("--take-over", is_flag=True, help="Take the lease of an agent whose heartbeat is older than 120 s.")
def agent(run_id: str, store: str, checkout: Path, state_dir: Path, take_over: bool) -> None:
    """Execute a recorded run here (what an instance starts).

    Runs RUN_ID's plan in this checkout; resumes a run already begun.
    """
    from campaign.agent.execute import run_agent  # lazy: see campaign.targets.local.target

    run_agent(run_id, store, checkout=checkout, state_dir=state_dir, take_over=take_over)


@cli.command()
@run_id_argument
@state_dir_option
def down(run_id: str, state_dir: Path | None) -> None:
    """Destroy what is left of an AWS run.

    After --keep, or a teardown that did not finish.
    """
    get_cloud_target("aws").down(run_id, state_dir, click.echo)


@cli.command()
def doctor() -> None:
    """Say which AWS credentials are in effect, and test them.

    Profile, environment or wrapper, and what STS answers.
    """
    raise click.exceptions.Exit(get_cloud_target("aws").doctor(click.echo))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn exceptions into the documented exit codes."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="campaign", standalone_mode=False)
        return code if isinstance(code, int) else 0  # click returns Exit's code in this mode
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as err:
        err.show()
        return 2
    except click.exceptions.Abort:
        click.echo("campaign: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("campaign: interrupted", err=True)
        return 130
    except CampaignError as err:
        if debug:
            raise
        click.echo(f"campaign: {err}", err=True)
        return err.exit_code
    except Exception:
        if debug:
            raise
        click.echo("campaign: internal error (a bug; please report it with this output):", err=True)
        traceback.print_exc()
        return 1


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
