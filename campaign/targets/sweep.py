"""Sweeps: the same campaign once per instance type, strictly one type after another, under one sweep id.

A sweep is a loop of `drive()` (campaign.targets.base), one RunRequest per type with
`options["instance_type"]` set; it works with any Target. Before the first type runs, the target's
preflight sees the whole sweep once (`options["instance_types"]`), so fleet-wide checks gate it. A type
that fails is recorded (its reason) and the sweep goes on, unless stop_on_failure. Ctrl-C stops the sweep
(the type is recorded as interrupted). The record (campaign.run.sweep) is written after every change.

Resuming (after a crash or kill -9 of the driving process): finished types (succeeded or failed) are
never run again; an interrupted type is run again as a new run under the sweep, its earlier run id kept as
superseded, after the target has brought down whatever that run left (`down`), so two machines of the
sweep are never up at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from campaign.errors import CampaignError, InputError, PreflightRefused, StageFailed
from campaign.preflight.planner import refusal_message
from campaign.run.record import RunRecord
from campaign.run.sweep import (
    DEAD,
    FAILED,
    FINISHED,
    INTERRUPTED,
    PENDING,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    Member,
    SweepBook,
    SweepRecord,
    new_sweep_id,
    sweep_state,
    this_driver,
)
from campaign.store import open_store
from campaign.system.clock import now_iso
from campaign.targets.base import CloudTarget, Out, Prepared, RunRequest, Target, drive

PriceOf = Callable[[str], tuple[float, str] | float | None]  # instance type -> USD per hour (and its source)


@dataclass(frozen=True)
class SweepRequest:
    """What the command line asked of the sweep, beyond the run request every member shares."""

    instance_types: tuple[str, ...]
    stop_on_failure: bool = False
    nodes: int = 1


def check_instance_types(types: tuple[str, ...], where: str = "--instance-types") -> tuple[str, ...]:
    cleaned = tuple(t.strip() for t in types if t.strip())
    if not cleaned:
        raise InputError(f"{where}: no instance type given; e.g. --instance-types c7i.xlarge,c7g.xlarge.")
    doubled = sorted({t for t in cleaned if cleaned.count(t) > 1})
    if doubled:
        raise InputError(f"{where}: {', '.join(doubled)} named twice; a sweep runs each instance type once.")
    return cleaned


def start_sweep(
    target: Target, request: RunRequest, sweep: SweepRequest, *, price_of: PriceOf, state_dir: Path, out: Out
) -> SweepRecord:
    """Preflight the whole sweep once, record it, then run every type in order. Returns the record."""
    whole = replace(request, options={**request.options, "instance_types": sweep.instance_types})
    prepared = target.preflight(whole)
    if prepared.plan.refusals:
        raise PreflightRefused(
            f"sweep over {', '.join(sweep.instance_types)} refused before any type ran:\n"
            + refusal_message(prepared.plan)
        )
    record = new_sweep_record(prepared, request, sweep, target.name, price_of)
    book = SweepBook(record, open_store(prepared.store_url), state_dir, out)
    out(f"sweep: {record.sweep_id} ({len(record.members)} instance types, one after another)")
    book.save()
    return continue_sweep(target, request, book, out)


def new_sweep_record(
    prepared: Prepared, request: RunRequest, sweep: SweepRequest, target_name: str, price_of: PriceOf
) -> SweepRecord:
    members = []
    for instance_type in sweep.instance_types:
        price, source = _price(price_of, instance_type)
        members.append(Member(instance_type, sweep.nodes, usd_per_hour=price, price_source=source))
    return SweepRecord(
        sweep_id=new_sweep_id(prepared.plan.commit),
        campaign_file=str(request.campaign_file),
        selection=request.selection,
        target=target_name,
        store=prepared.store_url,
        commit=prepared.plan.commit,
        created_at=now_iso(),
        members=members,
        stop_on_failure=sweep.stop_on_failure,
        keep_going=request.keep_going,
        options={k: v for k, v in request.options.items() if k not in ("instance_type", "instance_types")},
        vars=dict(request.vars),
        driver=this_driver(),
    )


def _price(price_of: PriceOf, instance_type: str) -> tuple[float | None, str]:
    answer = price_of(instance_type)
    if answer is None:
        return None, "unknown"
    if isinstance(answer, tuple):
        return float(answer[0]), answer[1]
    return float(answer), "given"


def member_request(request: RunRequest, member: Member, sweep_id: str = "") -> RunRequest:
    options = {k: v for k, v in request.options.items() if k != "instance_types"}
    return replace(request, options={**options, "instance_type": member.instance_type, "sweep_id": sweep_id})


def continue_sweep(target: Target, request: RunRequest, book: SweepBook, out: Out) -> SweepRecord:
    """Run every member not finished yet, in order; the sweep's state and summary at the end."""
    record = book.record
    record.state, record.driver = RUNNING, this_driver()
    book.save()
    for member in record.members:
        if member.state in FINISHED:
            continue
        if member.run_id is not None:
            supersede(target, request, book, member, out)
        if not run_member(target, request, book, member, out) and record.stop_on_failure:
            record.state = STOPPED
            break
    else:
        record.state = SUCCEEDED if all(m.state == SUCCEEDED for m in record.members) else FAILED
    book.save()
    out(summary_line(record))
    failed = [m for m in record.members if m.state == FAILED]
    if failed:
        raise StageFailed(failure_message(record, failed))
    return record


def supersede(target: Target, request: RunRequest, book: SweepBook, member: Member, out: Out) -> None:
    """An interrupted member's run: bring down what it left, keep its id as superseded, run the type anew."""
    old = member.run_id or ""
    out(f"sweep {book.record.sweep_id}: {member.instance_type}: run {old} was interrupted; it runs again as a new run")
    if isinstance(target, CloudTarget):
        target.down(old, request.state_dir, out)
    member.superseded.append(old)
    member.run_id, member.state, member.reason = None, PENDING, ""
    book.save()


def run_member(target: Target, request: RunRequest, book: SweepBook, member: Member, out: Out) -> bool:
    """One type's run through drive(); its outcome recorded. True when it succeeded; Ctrl-C stops the sweep."""
    member.state, member.started_at, member.ended_at, member.reason = RUNNING, now_iso(), None, ""
    book.save()
    out(f"sweep {book.record.sweep_id}: {member.instance_type} ({_position(book.record, member)})")
    observed = _Observed(target, lambda record: _record_run_id(book, member, record))
    asked = member_request(request, member, book.record.sweep_id)
    member.cluster = getattr(target, "member_cluster", lambda _: None)(asked)  # a sweep of clusters: its name
    try:
        drive(observed, asked, out)
        member.state = SUCCEEDED
    except KeyboardInterrupt:
        member.state, member.reason = INTERRUPTED, "interrupted (Ctrl-C or SIGTERM)"
        book.record.state = INTERRUPTED
        raise
    except CampaignError as err:
        member.state, member.reason = FAILED, failure_reason(err)
        out(f"sweep {book.record.sweep_id}: {member.instance_type} failed: {member.reason}; the sweep goes on")
    finally:
        member.ended_at = now_iso()
        book.save()
    return member.state == SUCCEEDED


def failure_reason(err: Exception) -> str:
    """The error's first line and its first line naming an error (Terraform's `Error: …`), for the record."""
    lines = [line.strip(" │╷╵") for line in str(err).splitlines() if line.strip(" │╷╵")]
    first = lines[0] if lines else type(err).__name__
    detail = next((line for line in lines[1:] if "error" in line.lower()), "")
    return f"{first} {detail}".strip()[:500]


def _record_run_id(book: SweepBook, member: Member, record: RunRecord) -> None:
    member.run_id = record.run_id
    book.save()


def _position(record: SweepRecord, member: Member) -> str:
    return f"type {record.members.index(member) + 1} of {len(record.members)}"


class _Observed:
    """The target, telling the sweep the run id as soon as the run's record exists (before provision)."""

    def __init__(self, target: Target, on_record: Callable[[RunRecord], None]) -> None:
        self._target, self._on_record = target, on_record
        self.name = target.name

    def new_record(self, prepared: Prepared, request: RunRequest) -> RunRecord:
        record = self._target.new_record(prepared, request)
        self._on_record(record)
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def summary_line(record: SweepRecord) -> str:
    parts = [f"{m.instance_type} {m.state}" + (f" ({m.run_id})" if m.run_id else "") for m in record.members]
    return f"sweep {record.sweep_id}: {record.state}: " + "; ".join(parts)


def failure_message(record: SweepRecord, failed: list[Member]) -> str:
    lines = [f"sweep {record.sweep_id}: {len(failed)} of {len(record.members)} instance types failed:"]
    lines += [f"  {m.instance_type} (run {m.run_id or 'never started'}): {m.reason}" for m in failed]
    lines.append(
        f"`campaign status {record.sweep_id}` shows every type; `campaign status RUN` the stages of one. "
        + (
            f"`campaign resume {record.sweep_id}` runs the types not reached (--stop-on-failure stopped it)."
            if record.state == STOPPED
            else "A failed type is not run again by resume: start a new sweep for it."
        )
    )
    return "\n".join(lines)


def check_resumable(record: SweepRecord, *, take_over: bool = False) -> None:
    """InputError when there is nothing to resume; PreflightRefused while another process drives the sweep."""
    if record.state == RUNNING and not take_over and sweep_state(record) != DEAD:
        raise PreflightRefused(
            f"sweep {record.sweep_id} is being driven by pid {record.driver.get('pid')} on "
            f"{record.driver.get('host')}: two drivers would run two types at once. Stop that `campaign run` "
            f"first; if it is gone (another machine), `campaign resume {record.sweep_id} --take-over`."
        )
    if all(m.state in FINISHED for m in record.members):
        raise InputError(
            f"sweep {record.sweep_id} has nothing left to run: every type finished "
            f"({'; '.join(f'{m.instance_type} {m.state}' for m in record.members)}). "
            f"`campaign compare --sweep {record.sweep_id}` compares them."
        )


def resume_request(record: SweepRecord, state_dir: Path | None) -> RunRequest:
    """The run request the sweep was started with, rebuilt from its record."""
    return RunRequest(
        campaign_file=Path(record.campaign_file),
        selection=record.selection,
        store=record.store,
        keep_going=record.keep_going,
        state_dir=state_dir,
        options=dict(record.options),
        vars=dict(record.vars),
    )
