"""`campaign compare`, `campaign report` and `campaign ab`: the commands that turn results into decisions.

campaign.results (numpy, scipy, plotly: about 1.5 s of imports) is imported inside the commands that use
it, so `campaign plan` stays within its 0.3 s budget.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from campaign.cli.sweep_commands import compare_sweep, sweep_compare_options
from campaign.errors import InputError, PreflightRefused, RegressionFound
from campaign.run.dirs import default_store
from campaign.spec.variables import parse_var_options
from campaign.system.git import find_root, git
from campaign.targets.base import RunRequest, drive
from campaign.targets.registry import get_target


def _default_store() -> str:
    return default_store(find_root(Path.cwd()))


@click.command()
@click.argument("sides", nargs=-1, metavar="BASE [CONTENDER…]")
@click.option(
    "--store",
    default=None,
    metavar="DIR|s3://BUCKET/PREFIX",
    help="The store of the runs named (RUN@STORE names another). Default: the repository's.",
)
@click.option(
    "--by",
    type=click.Choice(["engine", "side"]),
    default=None,
    help="Compare within one run: its engines (the first is the base), or an `ab` run's sides.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0),
    default=0.05,
    show_default=True,
    help="The noise band: smaller changes are never called slower or faster (0.05 = 5 %).",
)
@click.option("--json", "as_json_flag", is_flag=True, help="Print the comparison as a JSON document.")
@click.option("--markdown", is_flag=True, help="Print the comparison as Markdown.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a self-contained HTML report of the comparison to this file.",
)
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="Exit 6 when any item is significantly slower or newly failing (for CI gates).",
)
@sweep_compare_options
def compare(
    sides: tuple[str, ...],
    store: str | None,
    by: str | None,
    threshold: float,
    as_json_flag: bool,
    markdown: bool,
    html_file: Path | None,
    fail_on_regression: bool,
    sweep: str | None,
    baseline: str | None,
) -> None:
    """Compare runs or results files item by item, or a sweep's types.

    BASE and each CONTENDER: run ids, unique prefixes, `latest`, RUN@STORE, or .jsonl results files.
    """
    if sweep is not None or not sides:
        return compare_sweep(sweep, sides, store, baseline, as_json=as_json_flag, html_file=html_file)
    from campaign.results.command import CompareOptions, compare_sides, load_sides, sides_to_compare
    from campaign.results.html import ReportRun, build_html, write_html
    from campaign.results.render import as_json, as_markdown, as_text

    stores = (lambda: store) if store else _default_store
    loaded, split_by = sides_to_compare(load_sides(list(sides), stores), by)
    comparisons = compare_sides(loaded, split_by, CompareOptions(threshold=threshold))
    if as_json_flag:
        click.echo(as_json(comparisons))
    else:
        render = as_markdown if markdown else as_text
        click.echo("\n\n".join(render(comparison) for comparison in comparisons))
    if html_file is not None:
        runs = [ReportRun(side.name, side.records, side.host) for side in loaded]
        write_html(html_file, build_html(f"Comparison: {', '.join(sides)}", runs, comparisons))
        click.echo(f"html: {html_file}", err=True)
    regressions = [f"{row.label} ({row.verdict})" for c in comparisons for row in c.regressions]
    if fail_on_regression and regressions:
        raise RegressionFound(f"{len(regressions)} regression(s): {', '.join(regressions)}")


@click.command()
@click.argument("sides", nargs=-1, required=True, metavar="RUN|FILE…")
@click.option("--store", default=None, metavar="DIR|s3://BUCKET/PREFIX", help="The store of the runs named.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("report.html"), show_default=True)
@click.option("--by", type=click.Choice(["engine", "side"]), default=None, help="Also compare within one run.")
def report(sides: tuple[str, ...], store: str | None, output: Path, by: str | None) -> None:
    """Write one self-contained HTML report.

    Of runs or results files, and their comparison when there are several (or for an `ab` run).
    """
    from campaign.results.command import CompareOptions, report_html
    from campaign.results.html import write_html

    stores = (lambda: store) if store else _default_store
    write_html(output, report_html(list(sides), stores, CompareOptions(by=by)))
    click.echo(f"report: {output}")


def resolve_commit(root: Path, rev: str) -> str:
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except PreflightRefused:  # git's own error is unhelpful here: say what to fix
        raise InputError(f"{rev!r} is not a commit of {root} (a branch, tag or sha: `git log` lists them)") from None


@click.command()
@click.argument("base_rev")
@click.argument("contender_rev")
@click.argument("selection", required=False)
@click.option(
    "-f", "--file", "campaign_file", type=click.Path(path_type=Path), default="campaign.yaml", show_default=True
)
@click.option("--store", default=None, metavar="DIR|s3://BUCKET/PREFIX")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None)
@click.option("--seed", type=int, default=None, help="The seed of the rounds' random order (default: random).")
@click.option("--var", "var_texts", metavar="NAME=VALUE", multiple=True, help="Override a campaign var.")
@click.option(
    "--target",
    type=click.Choice(["local", "aws"]),
    default="local",
    show_default=True,
    help="Where the run executes; on aws one instance runs both sides (both commits must be pushed).",
)
@click.option("--instance-type", default=None, help="AWS target: the EC2 instance type.")
@click.option("--region", default=None, help="AWS target: the region.")
@click.option("--keep", is_flag=True, default=None, help="AWS target: leave the instance after the run.")
def ab(
    base_rev: str,
    contender_rev: str,
    selection: str | None,
    campaign_file: Path,
    store: str | None,
    state_dir: Path | None,
    seed: int | None,
    var_texts: tuple[str, ...],
    target: str,
    instance_type: str | None,
    region: str | None,
    keep: bool | None,
) -> None:
    """Run two commits in one run, in interleaved rounds.

    BASE_REV and CONTENDER_REV (branches, tags, shas) run on one machine, each in its own checkout, data made once,
    every query of both in randomized interleaved rounds; the comparison is printed and stored with the run.
    """
    root = find_root(Path.cwd())
    sides = {"base": resolve_commit(root, base_rev), "contender": resolve_commit(root, contender_rev)}
    request = RunRequest(
        campaign_file=campaign_file,
        selection=selection,
        store=store,
        state_dir=state_dir,
        vars=parse_var_options(var_texts),
        sides=sides,
        options={"instance_type": instance_type, "region": region, "keep": keep},
        order_seed=secrets.randbelow(2**31) if seed is None else seed,
    )
    click.echo(
        f"ab: base {base_rev} = {sides['base'][:12]}, contender {contender_rev} = {sides['contender'][:12]}, "
        f"order seed {request.order_seed}"
    )
    drive(get_target(target), request, click.echo)
