"""The sweep's own flag of `campaign run` (its types and cost limit are campaign.cli.options.fleet_options)."""

from __future__ import annotations

from collections.abc import Callable

import click


def stop_on_failure_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--stop-on-failure",
        is_flag=True,
        help="Sweep: stop at the first instance type that fails (default: record it and go on).",
    )(command)
