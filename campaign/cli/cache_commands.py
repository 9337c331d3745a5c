"""`campaign cache ls|rm` (the data cache in the store) and `campaign gc` (local leftovers of finished runs)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.filesize import decimal

import campaign.run.cache as data_cache
from campaign.cli.options import open_store_for, state_dir_option, store_option
from campaign.errors import CampaignError, InputError
from campaign.run.dirs import state_dir_for
from campaign.run.gc import collect_garbage
from campaign.system.git import find_root
from campaign.ui.tables import format_table


@click.group()
def cache() -> None:
    """List or remove the data cache's entries.

    The outputs of `cache: true` stages, stored once per key under <store>/cache/<key>/.
    """


@cache.command("ls")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the entries as a JSON document.")
def cache_ls(store: str | None, as_json: bool) -> None:
    """List the cache entries: key, stage, SF, size, created, files."""
    opened = open_store_for(store)
    rows = []
    for key, entry, problem in data_cache.list_entries(opened):
        rows.append(
            {
                "key": key,
                "stage": entry.stage if entry else None,
                "sf": entry.sf if entry else None,
                "size": entry.size if entry else None,
                "created": entry.created_at if entry else None,
                "files": len(entry.files) if entry else None,
                "problem": problem,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no cache entries in {opened.where(data_cache.PREFIX)}")
        return
    table: list[tuple[str, ...]] = [("key", "stage", "sf", "size", "created", "files")]
    table += [_row(row) for row in rows]
    click.echo("\n".join(format_table(table)))
    for row in rows:
        if row["problem"]:
            click.echo(f"{row['key']}: {row['problem']}", err=True)


def _row(row: dict) -> tuple[str, ...]:
    if row["problem"]:
        return (row["key"], "-", "-", "-", "-", "unusable")
    size = decimal(row["size"])
    return (row["key"], row["stage"], row["sf"] or "-", size, row["created"], str(row["files"]))


@cache.command("rm")
@click.argument("keys", nargs=-1)
@click.option("--all", "remove_all", is_flag=True, help="Remove every entry.")
@store_option
def cache_rm(keys: tuple[str, ...], remove_all: bool, store: str | None) -> None:
    """Remove cache entries: KEY… (full keys or unique prefixes of 8+ characters) or --all.

    A later run of the stage generates its data again and stores a new entry.
    """
    if bool(keys) == remove_all:
        raise InputError("cache rm: give the KEYs to remove (`campaign cache ls` lists them) or --all, not both.")
    opened = open_store_for(store)
    chosen = data_cache.entry_keys(opened) if remove_all else data_cache.resolve_keys(opened, keys)
    for key in chosen:
        count = data_cache.remove_entry(opened, key)
        click.echo(f"removed {opened.where(data_cache.PREFIX)}/{key}/ ({count} objects)")
    if not chosen:
        click.echo(f"no cache entries in {opened.where(data_cache.PREFIX)}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed, and how much; remove nothing.")
@click.option(
    "--older-than",
    "older_than_days",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Only runs that ended more than DAYS days ago.",
)
@store_option
@state_dir_option
def gc(dry_run: bool, older_than_days: float | None, store: str | None, state_dir: Path | None) -> None:
    """Remove checkouts and data of finished runs.

    Checkouts and regenerable data only.

    Only runs that ended (succeeded or failed), whose lease is released and whose every stored artifact
    verifies in the store. Results, logs, journals and anything not verified in the store are kept.
    """
    opened = open_store_for(store)
    try:
        root = find_root(Path.cwd())
    except CampaignError:
        root = Path.cwd()
    report = collect_garbage(state_dir_for(root, state_dir), opened, dry_run=dry_run, older_than_days=older_than_days)
    for line in report.lines:
        click.echo(line)
