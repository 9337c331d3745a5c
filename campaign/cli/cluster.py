"""`campaign cluster …`: bring a cluster up, look at it, run commands on it, deploy to it, stop, start, bring it down.

Exit codes as everywhere (campaign.errors): 2 bad input (unknown cluster, bad --on), 3 refused, 4 a node or
service failed (exec or deploy on some node, a service not healthy after up/start/deploy).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from campaign.errors import CampaignError, StageFailed
from campaign.run.dirs import state_dir_for
from campaign.system.git import find_root

name_option = click.option(
    "--name", "-n", default=None, help="The cluster (default: the only one; for `up`, the campaign's name)."
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Default: $CAMPAIGN_HOME, else .campaign in the repository.",
)


def _state_dir(explicit: Path | None) -> Path:
    try:
        root = find_root(Path.cwd())
    except CampaignError:
        root = Path.cwd()
    return state_dir_for(root, explicit)


def _name(state_dir: Path, name: str | None) -> str:
    from campaign.targets.cluster.state import resolve_name

    return resolve_name(state_dir, name)


def _aws(state_dir: Path, name: str) -> bool:
    """The cluster's nodes are EC2 instances (its record says target aws)."""
    from campaign.targets.cluster.state import read_record, record_path

    return record_path(state_dir, name).exists() and read_record(state_dir, name).target == "aws"


def _backend(state_dir: Path, name: str, part: str) -> Any:
    """The cluster's lifecycle or inspect module: local processes, or EC2 nodes driven through SSM."""
    from campaign.targets.registry import cluster_backend

    return cluster_backend("aws" if _aws(state_dir, name) else "local", part)


@click.group()
def cluster() -> None:
    """Bring up and drive a cluster of nodes running services.

    N nodes with health-checked services (locally each node on its own address 127.0.1.N; on AWS, EC2 instances
    driven through SSM): up, status, exec, deploy, stop, start, down, list, extend; forward and login (AWS).
    """


@cluster.command()
@click.option(
    "-f",
    "--file",
    "campaign_file",
    type=click.Path(path_type=Path),
    default="campaign.yaml",
    show_default=True,
    help="The campaign file declaring cluster: and services:.",
)
@name_option
@click.option("--nodes", type=click.IntRange(1, 64), default=None, help="Override cluster.nodes.")
@click.option("--target", type=click.Choice(["local", "aws"]), default="local", show_default=True)
@click.option("--resume", is_flag=True, help="Finish a half-up cluster (start what is missing).")
@state_dir_option
def up(
    campaign_file: Path, name: str | None, nodes: int | None, target: str, resume: bool, state_dir: Path | None
) -> None:
    """Bring the cluster up and wait until it is healthy.

    Provisions the nodes, starts the services in needs order, waits until every health check passes.
    """
    from campaign.spec.load import load_campaign
    from campaign.targets.cluster.lifecycle import UpRequest
    from campaign.targets.cluster.lifecycle import up as cluster_up

    chosen = name or load_campaign(campaign_file).name.lower()
    folder = _state_dir(state_dir)
    if target == "aws" or (resume and _aws(folder, chosen)):
        from campaign.targets.registry import cluster_backend

        cluster_up = cluster_backend("aws", "lifecycle").up
    cluster_up(UpRequest(chosen, campaign_file, folder, nodes, target, resume), click.echo)


@cluster.command()
@name_option
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
def status(name: str | None, as_json: bool, state_dir: Path | None) -> None:
    """Show every node's and service's health.

    Per node and service: health, since when, commit deployed, watchdog time left. Exits 4 when unhealthy.
    """
    from campaign.targets.cluster.inspect import format_status, status_dict

    folder = _state_dir(state_dir)
    chosen = _name(folder, name)
    if _aws(folder, chosen):
        backend = _backend(folder, chosen, "inspect")
        document = backend.status_dict(folder, chosen)
        click.echo(
            json.dumps(document, indent=2) if as_json else format_status(document) + "\n" + backend.format_ec2(document)
        )
    else:
        document = status_dict(folder, chosen)
        click.echo(json.dumps(document, indent=2) if as_json else format_status(document))
    if not document["healthy"]:
        raise click.exceptions.Exit(StageFailed.exit_code)


@cluster.command(name="exec", context_settings={"ignore_unknown_options": True})
@name_option
@click.option("--on", "on", default="all", show_default=True, help="all, coordinator, workers or a node number.")
@click.option("--timeout", type=float, default=None, help="Seconds per node.")
@state_dir_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(name: str | None, on: str, timeout: float | None, state_dir: Path | None, command: tuple[str, ...]) -> None:
    """Run a command on the nodes in parallel.

    COMMAND comes after --; output per node; exits 4 if it failed on any node.
    """
    from campaign.targets.cluster.inspect import run_exec

    folder = _state_dir(state_dir)
    chosen = _name(folder, name)
    if _aws(folder, chosen):
        run_exec = _backend(folder, chosen, "inspect").run_exec
    if run_exec(folder, chosen, on, " ".join(command), click.echo, timeout):
        raise click.exceptions.Exit(StageFailed.exit_code)


@cluster.command()
@name_option
@state_dir_option
def deploy(name: str | None, state_dir: Path | None) -> None:
    """Deploy HEAD to every node and restart its services.

    The build output too (prebuilt or built once); health re-checked; prints "N succeeded, M failed".
    """
    from campaign.targets.cluster.lifecycle import deploy as cluster_deploy

    folder = _state_dir(state_dir)
    if _aws(folder, _name(folder, name)):
        cluster_deploy = _backend(folder, _name(folder, name), "lifecycle").deploy
    _, failed = cluster_deploy(folder, _name(folder, name), click.echo)
    if failed:
        raise click.exceptions.Exit(StageFailed.exit_code)


@cluster.command()
@name_option
@state_dir_option
def stop(name: str | None, state_dir: Path | None) -> None:
    """Stop every service, keeping the nodes' folders."""
    from campaign.targets.cluster.lifecycle import stop as cluster_stop

    folder = _state_dir(state_dir)
    if _aws(folder, _name(folder, name)):
        cluster_stop = _backend(folder, _name(folder, name), "lifecycle").stop
    cluster_stop(folder, _name(folder, name), click.echo)


@cluster.command()
@name_option
@state_dir_option
def start(name: str | None, state_dir: Path | None) -> None:
    """Start the services of a stopped cluster and health-check them."""
    from campaign.targets.cluster.lifecycle import start as cluster_start

    folder = _state_dir(state_dir)
    if _aws(folder, _name(folder, name)):
        cluster_start = _backend(folder, _name(folder, name), "lifecycle").start
    cluster_start(folder, _name(folder, name), click.echo)


@cluster.command()
@name_option
@state_dir_option
def down(name: str | None, state_dir: Path | None) -> None:
    """Stop everything and remove the cluster.

    No process and no bound port is left (AWS: terraform destroy, no instance tagged with the cluster left);
    exits 4 (3 on AWS) when something survived.
    """
    from campaign.targets.cluster.lifecycle import down as cluster_down

    folder = _state_dir(state_dir)
    if _aws(folder, _name(folder, name)):
        _backend(folder, _name(folder, name), "lifecycle").down(folder, _name(folder, name), click.echo)
        return
    cluster_down(folder, _name(folder, name), click.echo)


@cluster.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
def list_(as_json: bool, state_dir: Path | None) -> None:
    """The clusters kept here."""
    from campaign.targets.cluster.inspect import list_clusters

    rows = list_clusters(_state_dir(state_dir))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['name']}\t{row['target']}\t{row['state']}\t{row['nodes']} nodes\t{row['commit'][:12]}\t"
            f"watchdog {row['watchdog_left_s'] / 3600:.1f} h"
        )
    if not rows:
        click.echo("no clusters here")


@cluster.command()
@name_option
@click.option("--hours", type=click.FloatRange(min=0.1, max=168), default=1.0, show_default=True)
@state_dir_option
def extend(name: str | None, hours: float, state_dir: Path | None) -> None:
    """Push the max-lifetime watchdog back by --hours."""
    from campaign.targets.cluster.lifecycle import extend as cluster_extend

    folder = _state_dir(state_dir)
    if _aws(folder, _name(folder, name)):
        cluster_extend = _backend(folder, _name(folder, name), "lifecycle").extend
    cluster_extend(folder, _name(folder, name), hours, click.echo)


@cluster.command()
@name_option
@click.argument("service")
@click.option("--local-port", type=click.IntRange(1, 65535), default=None, help="Default: the service's port.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: the service's first port.")
@click.option("--node", type=click.IntRange(1, 64), default=None, help="Default: the first node running it.")
@state_dir_option
def forward(
    name: str | None, service: str, local_port: int | None, port: int | None, node: int | None, state_dir: Path | None
) -> None:
    """Forward a local port to a service on an AWS node (SSM port forwarding).

    Needs the aws CLI and AWS's session-manager-plugin (exit 3 with how to install it); exits with the session's
    code.
    """
    folder = _state_dir(state_dir)
    record = _aws_record(folder, _name(folder, name), f"{service} answers at its node's address already")
    sessions = _backend(folder, record.name, "sessions")
    argv = sessions.forward_argv(record, sessions.require_tools(record), service, local_port, port, node)
    raise click.exceptions.Exit(sessions.start_session(record, argv))


@cluster.command()
@name_option
@click.argument("node", required=False)
@state_dir_option
def login(name: str | None, node: str | None, state_dir: Path | None) -> None:
    """Open a shell on an AWS node (SSM session; default: the coordinator).

    Needs the aws CLI and AWS's session-manager-plugin (exit 3 with how to install it).
    """
    folder = _state_dir(state_dir)
    record = _aws_record(folder, _name(folder, name), "its nodes are folders here: .campaign/clusters/NAME/nodes/N/")
    sessions = _backend(folder, record.name, "sessions")
    argv = sessions.login_argv(record, sessions.require_tools(record), node)
    raise click.exceptions.Exit(sessions.start_session(record, argv))


def _aws_record(state_dir: Path, name: str, local_hint: str) -> Any:
    from campaign.errors import InputError
    from campaign.targets.cluster.state import read_record

    record = read_record(state_dir, name)
    if record.target != "aws":
        raise InputError(f"cluster {name} is a local cluster: no SSM session needed ({local_hint}).")
    return record
