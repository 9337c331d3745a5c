"""The sweep's flags of `campaign run`: --instance-types, --max-cost and --stop-on-failure."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class SweepFlags:
    """The three flags, as one parameter of the command."""

    instance_types: tuple[str, ...] = ()
    max_cost: float | None = None
    stop_on_failure: bool = False


def split_types(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    return () if value is None else tuple(part.strip() for part in value.split(",") if part.strip())


def sweep_options(command: Callable[..., None]) -> Callable[..., None]:
    """A sweep: the campaign once per instance type, one after another, under one sweep id (AWS target).
    The command gets them as one parameter, `sweep: SweepFlags`."""

    @functools.wraps(command)
    def with_flags(
        *args: Any, instance_types: tuple[str, ...], max_cost: float | None, stop_on_failure: bool, **kwargs: Any
    ) -> None:
        command(*args, sweep=SweepFlags(instance_types, max_cost, stop_on_failure), **kwargs)

    return _flags(with_flags)


def _flags(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "--stop-on-failure",
        is_flag=True,
        help="Sweep: stop at the first instance type that fails (default: record it and go on).",
    )(command)
    command = click.option(
        "--max-cost",
        type=click.FloatRange(min=0),
        default=None,
        metavar="USD",
        help="Sweep: the most the whole sweep may cost (checked by the AWS target's preflight).",
    )(command)
    return click.option(
        "--instance-types",
        default=None,
        metavar="A,B,C",
        callback=split_types,
        help="AWS target: run the campaign once per instance type, one after another, under one sweep id.",
    )(command)
