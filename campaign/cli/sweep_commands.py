"""Sweeps on the command line: which instance types a `run` sweeps, and `status`/`resume` of a sweep.

The types come from --instance-types, else the campaign file's `matrix: {instance_types: [...]}`, else
`instance_types` in `.campaign/config.toml [aws]`; --instance-type (one type) runs once, no sweep.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from campaign.errors import CampaignError, InputError
from campaign.run.dirs import state_dir_for
from campaign.run.resolve import resolve_sweep_id
from campaign.run.sweep import Member, SweepBook, read_sweep
from campaign.run.sweep_status import format_sweep_status, sweep_status_dict
from campaign.spec.load import load_campaign
from campaign.store import Store, open_store
from campaign.system.git import find_root
from campaign.targets.base import RunRequest
from campaign.targets.registry import get_target
from campaign.targets.sweep import (
    SweepRequest,
    check_instance_types,
    check_resumable,
    continue_sweep,
    resume_request,
    start_sweep,
)

LOCAL_SWEEP_REFUSED = (
    "--instance-types {types}: a sweep runs on EC2 instances, one type after another; the local target "
    "has this one machine. Use --target aws, or drop --instance-types to rehearse here."
)


def price_list(region: str | None) -> Callable[[str], tuple[float, str] | None]:
    """The hourly price of one instance of a type in the sweep's region (spot when the settings say so), and where
    it came from; None: unknown (costs are shown as '-'). Asked once per type when the sweep starts."""
    from campaign.targets.aws.pricing import hourly_price
    from campaign.targets.aws.settings import load_settings

    settings = load_settings(_root(), region=region)

    def price_of(instance_type: str) -> tuple[float, str] | None:
        price = hourly_price(instance_type, settings.region, spot=settings.spot)
        return (price.usd_per_hour, price.source) if price.known else None

    return price_of


def sweep_types(
    flag_types: tuple[str, ...],
    single_type: str | None,
    campaign_file: Path,
    target: str,
    *,
    cluster: str | None = None,
    nodes: int | None = None,
) -> tuple[str, ...]:
    """The instance types a `run` sweeps; () for a single run."""
    if nodes is not None:
        return cluster_sweep_types(flag_types, campaign_file, target, cluster, nodes)
    if cluster is not None:
        if flag_types:
            raise InputError(
                f"--instance-types with --cluster {cluster}: a kept cluster has its nodes already. Drop --cluster "
                "and give --nodes N: the sweep brings up a fresh cluster of N nodes per type."
            )
        return ()
    if flag_types:
        if target != "aws":
            raise InputError(LOCAL_SWEEP_REFUSED.format(types=",".join(flag_types)))
        return check_instance_types(flag_types)
    if single_type is not None or target != "aws":
        return ()
    from_file = load_campaign(campaign_file).matrix_instance_types if campaign_file.is_file() else ()
    if from_file:
        return from_file
    from campaign.targets.aws.settings import load_settings

    return load_settings(_root()).instance_types


def cluster_sweep_types(
    flag_types: tuple[str, ...], campaign_file: Path, target: str, cluster: str | None, nodes: int
) -> tuple[str, ...]:
    """--nodes N: a sweep of fresh AWS clusters, N nodes of each type of --instance-types."""
    where = f"--nodes {nodes}"
    if nodes < 1:
        raise InputError(f"{where}: a cluster has at least one node; give --nodes 1 or more.")
    if cluster is not None:
        raise InputError(f"{where} with --cluster {cluster}: a kept cluster has its nodes already; drop --nodes.")
    if target != "aws" or not flag_types:
        raise InputError(
            f"{where}: a sweep of clusters brings up N nodes of each type on EC2; give --target aws "
            "--instance-types A,B (e.g. --instance-types c7i.xlarge,c7g.xlarge)."
        )
    if clustered(campaign_file) is None:
        raise InputError(
            f"{where} (a sweep of clusters over {','.join(flag_types)}): {campaign_file} declares no cluster: "
            "section, so there is nothing to bring up N nodes of. Add `cluster: {nodes: N}` (and its services) "
            "to the campaign file, or drop --nodes to sweep one instance per type."
        )
    return check_instance_types(flag_types)


def clustered(campaign_file: Path) -> int | None:
    """The node count of the campaign's cluster: section; None without one."""
    spec = load_campaign(campaign_file) if campaign_file.is_file() else None
    return spec.cluster.nodes if spec is not None and spec.cluster is not None else None


def run_sweep(
    request: RunRequest, target: str, types: tuple[str, ...], stop_on_failure: bool, nodes: int | None = None
) -> None:
    """--nodes N, or a campaign with a cluster: swept on AWS: a fresh cluster of N nodes per type; else an
    instance per type."""
    nodes = nodes or request.options.get("nodes") or (clustered(request.campaign_file) if target == "aws" else None)
    if nodes is not None:  # a campaign with a cluster: (or --nodes): a fresh cluster per type
        target = "cluster-aws-sweep"
        request = replace(request, options={**request.options, "nodes": int(nodes)})
    start_sweep(
        get_target(target),
        request,
        SweepRequest(types, stop_on_failure=stop_on_failure, nodes=int(nodes or 1)),
        price_of=price_list(request.options.get("region")),
        state_dir=state_dir_for(_root(), request.state_dir),
        out=click.echo,
    )


def resume_sweep(text: str, store: Store, state_dir: Path | None, *, take_over: bool = False) -> None:
    """`campaign resume SWEEP`: the types not finished yet, from the first unfinished one."""
    where = state_dir_for(_root(), state_dir)
    record = read_sweep(store, where, resolve_sweep_id(store, where, text))
    check_resumable(record, take_over=take_over)
    record_store = open_store(record.store)
    book = SweepBook(record, record_store, where, click.echo)
    click.echo(f"sweep: {record.sweep_id} (resumed)")
    continue_sweep(get_target(record.target), resume_request(record, state_dir), book, click.echo)


def show_sweep(text: str, store: Store, as_json: bool) -> None:
    where = state_dir_for(_root())
    document = sweep_status_dict(read_sweep(store, where, resolve_sweep_id(store, where, text)))
    click.echo(json.dumps(document, indent=2) if as_json else format_sweep_status(document))


def _root() -> Path:
    try:
        return find_root(Path.cwd())
    except CampaignError:
        return Path.cwd()


def sweep_compare_options(command: Callable[..., None]) -> Callable[..., None]:
    """`campaign compare --sweep SWEEP [--baseline TYPE]`."""
    command = click.option(
        "--baseline",
        metavar="TYPE",
        default=None,
        help="With --sweep: the instance type the others are compared to (default: the first with results).",
    )(command)
    return click.option(
        "--sweep",
        metavar="SWEEP",
        default=None,
        help="Compare the instance types of a sweep: time per item and type, ratio, cost at each type's price.",
    )(command)


def compare_sweep(
    sweep: str | None,
    sides: tuple[str, ...],
    store: str | None,
    baseline: str | None,
    *,
    as_json: bool,
    html_file: Path | None,
) -> None:
    if sweep is None or sides:
        raise InputError(
            "compare needs a BASE and at least one CONTENDER (run ids or .jsonl results files), or "
            "--sweep SWEEP alone (the instance types of a sweep)."
        )
    from campaign.results import sweep_report as report_of
    from campaign.results.html import write_html

    opened = open_store(store) if store else open_store_for_sweeps()
    where = state_dir_for(_root())
    record = read_sweep(opened, where, resolve_sweep_id(opened, where, sweep))
    base = open_store(record.store)

    def member_store(member: Member) -> Store:  # a sweep of clusters: the member's cluster's own prefix
        return open_store(f"{record.store.rstrip('/')}/clusters/{member.cluster}") if member.cluster else base

    report = report_of.sweep_report(base, record, baseline, member_store)
    click.echo(report_of.as_json(report) if as_json else report_of.as_text(report))
    if html_file is not None:
        write_html(html_file, report_of.as_html(report))
        click.echo(f"html: {html_file}", err=True)


def open_store_for_sweeps() -> Store:
    from campaign.run.dirs import default_store

    return open_store(default_store(_root()))
