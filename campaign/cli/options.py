"""The options several commands share, and the store a command reads when --store is not given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from campaign.errors import CampaignError
from campaign.run.dirs import default_store
from campaign.run.keys import check_run_id
from campaign.store import Store, open_store
from campaign.system.git import find_root

DEFAULT_CAMPAIGN_FILE = "campaign.yaml"

campaign_file_option = click.option(
    "-f",
    "--file",
    "campaign_file",
    type=click.Path(path_type=Path),
    default=DEFAULT_CAMPAIGN_FILE,
    show_default=True,
    help="The campaign file.",
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where run folders (checkouts, outputs, logs) go. Default: $CAMPAIGN_HOME, else .campaign in the repository.",
)
store_option = click.option(
    "--store",
    metavar="DIR|s3://BUCKET/PREFIX",
    default=None,
    help="Where artifacts go. Default: $CAMPAIGN_STORE, else .campaign/store in the repository.",
)


def valid_run_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return value if value is None else check_run_id(value)


run_id_argument = click.argument("run_id", callback=valid_run_id)


var_option = click.option(
    "--var",
    "var_texts",
    metavar="NAME=VALUE",
    multiple=True,
    help="Override one of the campaign's vars (repeatable), e.g. --var iterations=5 --var queries=q01,q03.",
)


def target_options(command: Callable[..., None]) -> Callable[..., None]:
    """--target and the AWS target's overrides (everything else: .campaign/config.toml [aws])."""
    command = click.option("--region", default=None, help="AWS target: the region.")(command)
    command = click.option("--instance-type", default=None, help="AWS target: the EC2 instance type.")(command)
    return click.option(
        "--target",
        type=click.Choice(["local", "aws"]),
        default="local",
        show_default=True,
        help="Where the run executes: this machine, or EC2 provisioned by Terraform.",
    )(command)


def open_store_for(url: str | None) -> Store:
    if url is None:
        try:
            url = default_store(find_root(Path.cwd()))
        except CampaignError:
            url = default_store(Path.cwd())
    return open_store(url)


def _type_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    types = tuple(dict.fromkeys(t.strip() for t in (value or "").split(",") if t.strip()))
    if value is not None and not types:
        raise click.BadParameter("give instance types separated by commas, e.g. c7i.xlarge,c7g.xlarge")
    return types


def fleet_options(command: Callable[..., None]) -> Callable[..., None]:
    """The sweep's fleet (AWS target), shared by `plan` and `run`: preflight checks every type before paying."""
    command = click.option(
        "--max-cost",
        type=click.FloatRange(min=0),
        default=None,
        metavar="USD",
        help="AWS target: refuse when the worst case (every type for max_hours) costs more than USD.",
    )(command)
    return click.option(
        "--instance-types",
        metavar="A,B,C",
        default=None,
        callback=_type_list,
        help="AWS target: a sweep, the campaign once per type, one after another (plan: each type is checked: "
        "offered, quota, memory, cost).",
    )(command)


nodes_option = click.option(
    "--nodes",
    type=int,
    default=None,
    metavar="N",
    help="With --target aws --instance-types: a sweep of clusters, N nodes of each type brought up, run, brought "
    "down, one type after another (the campaign declares cluster:).",
)
