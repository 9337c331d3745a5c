"""The read side of the command line: status, logs, runs and verify, from the store."""

from __future__ import annotations

import json
import sys

import click
from rich.filesize import decimal

from campaign.cli.options import open_store_for, run_id_argument, store_option
from campaign.cli.sweep_commands import show_sweep
from campaign.run.inspection import format_status, list_runs, stage_log, status_dict, verify_run
from campaign.run.resolve import resolve_run_id
from campaign.run.sweep import is_sweep_id
from campaign.ui.tables import format_table


@click.command()
@run_id_argument
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as a JSON document.")
def status(run_id: str, store: str | None, as_json: bool) -> None:
    """Show a run's state and each stage run's, or a sweep's types.

    Read from RUN_ID's journal in the store; a sweep id (sweep-…) shows the sweep's types.
    """
    opened = open_store_for(store)
    if is_sweep_id(run_id):
        return show_sweep(run_id, opened, as_json)
    document = status_dict(opened, resolve_run_id(opened, run_id))
    click.echo(json.dumps(document, indent=2) if as_json else format_status(document))


@click.command()
@run_id_argument
@click.argument("stage_run", required=False)
@store_option
def logs(run_id: str, stage_run: str | None, store: str | None) -> None:
    """Print a stage run's full log, or the runner's.

    STAGE_RUN is e.g. 'tpch-bench[sf1]' (quoted for the shell); without it, the runner's event log.
    """
    opened = open_store_for(store)
    sys.stdout.buffer.write(stage_log(opened, resolve_run_id(opened, run_id), stage_run))
    sys.stdout.flush()


@click.command()
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON document.")
def runs(store: str | None, as_json: bool) -> None:
    """List the runs in the store, newest first."""
    rows = list_runs(open_store_for(store))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("run", "state", "selection", "commit", "target")]
    table += [
        (r["run_id"], r["state"], r["selection"] or "-", (r["commit"] or "-")[:12], r["target"] or "-") for r in rows
    ]
    click.echo("\n".join(format_table(table)) if rows else "no runs in this store yet")
    for row in rows:
        if row["problem"]:
            click.echo(f"{row['run_id']}: {row['problem']}", err=True)


@click.command()
@run_id_argument
@store_option
@click.option("--deep", is_flag=True, help="Re-read every object and hash it, instead of trusting stored checksums.")
def verify(run_id: str, store: str | None, deep: bool) -> None:
    """Check a run's artifacts against its manifest.

    Every artifact of RUN_ID (size and SHA-256), and the manifest against the journal.
    """
    opened = open_store_for(store)
    run_id = resolve_run_id(opened, run_id)
    verified = verify_run(opened, run_id, deep=deep)
    how = (
        f"re-read and hashed {verified.artifacts} objects, {decimal(verified.bytes_hashed)}"
        if deep
        else "stored sizes and checksums; --deep re-reads and hashes every object"
    )
    click.echo(f"verified: {verified.artifacts} artifacts of run {run_id} match the manifest and the journal ({how})")
