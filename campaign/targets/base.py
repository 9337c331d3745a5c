"""The Target interface: every place a run can execute goes through the same steps.

    preflight  the plan with the target's own verdicts (nothing created)
    describe   the lines the target adds to the plan and to a run's first output
    provision  what must exist before the agent starts (a checkout; Terraform-made instances)
    execute    start the agent (in this process locally; userdata does it on an instance)
    watch      follow the run to its end (locally the agent already ran in the foreground)
    collect    the results, verified, and where they are
    teardown   remove what provision made (always, also after a failure or Ctrl-C)

`drive` runs them in that order; the CLI picks a target from campaign.targets.registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from campaign.errors import PreflightRefused
from campaign.planning.plan import Plan
from campaign.preflight.planner import refusal_message
from campaign.run.record import RunRecord
from campaign.system.signals import sigterm_as_interrupt

Out = Callable[[str], None]


@dataclass(frozen=True)
class RunRequest:
    """What the command line asked for, whatever the target; `options` holds the target's own
    (e.g. the AWS target's instance_type, region, keep)."""

    campaign_file: Path
    selection: str | None = None
    store: str | None = None
    keep_going: bool = False
    allow_dirty: bool = False
    state_dir: Path | None = None
    resume: bool = False
    take_over: bool = False
    sync_interval_s: float = 2.0
    options: Mapping[str, Any] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)  # --var NAME=VALUE, parsed
    sides: Mapping[str, str] = field(default_factory=dict)  # `campaign ab`: side name -> commit
    order_seed: int | None = None  # `campaign ab`: the seed of the rounds' order


@dataclass(frozen=True)
class Prepared:
    """A plan that passed (or was refused by) preflight, with what the target needs to go on."""

    plan: Plan
    root: Path
    store_url: str
    context: Any = None  # the target's own (settings, credentials, …)


@dataclass(frozen=True)
class Outcome:
    state: str  # succeeded, failed, interrupted, lost, …
    reason: str = ""


@runtime_checkable
class Target(Protocol):
    name: str

    def preflight(self, request: RunRequest, *, for_plan: bool = False) -> Prepared: ...
    def describe(self, prepared: Prepared) -> list[str]: ...
    def describe_json(self, prepared: Prepared) -> dict[str, Any]: ...
    def new_record(self, prepared: Prepared, request: RunRequest) -> RunRecord: ...
    def provision(self, prepared: Prepared, record: RunRecord, out: Out) -> None: ...
    def execute(self, prepared: Prepared, record: RunRecord, out: Out) -> None: ...
    def watch(self, prepared: Prepared, record: RunRecord, out: Out) -> Outcome: ...
    def collect(self, prepared: Prepared, record: RunRecord, outcome: Outcome, out: Out) -> None: ...
    def teardown(self, prepared: Prepared, record: RunRecord, out: Out) -> None: ...
    def finish(self, prepared: Prepared, record: RunRecord, outcome: Outcome) -> None: ...
    def resume(self, run_id: str, request: RunRequest, out: Out) -> str: ...
    def resume_unfinished(self, request: RunRequest, out: Out) -> str | None: ...
    def resume_plan(self, run_id: str, request: RunRequest) -> Plan: ...


@runtime_checkable
class CloudTarget(Target, Protocol):
    """A target that provisions machines: it can show what they boot with, clean up, and check access."""

    def show_userdata(self, request: RunRequest) -> str: ...
    def down(self, run_id: str, state_dir: Path | None, out: Out) -> None: ...
    def doctor(self, out: Out) -> int: ...


def drive(target: Target, request: RunRequest, out: Out) -> str:
    """Preflight, then every step of a run on target in order; teardown always. Returns the run id."""
    prepared = target.preflight(request)
    if prepared.plan.refusals:
        raise PreflightRefused(refusal_message(prepared.plan))
    record = target.new_record(prepared, request)
    out(f"run: {record.run_id}")
    for line in target.describe(prepared):
        out(line)
    with sigterm_as_interrupt():
        try:
            target.provision(prepared, record, out)
            target.execute(prepared, record, out)
            outcome = target.watch(prepared, record, out)
            target.collect(prepared, record, outcome, out)
        finally:
            target.teardown(prepared, record, out)
    target.finish(prepared, record, outcome)
    return record.run_id
