"""`campaign status SWEEP`: every instance type of a sweep, its state, run, duration and cost so far."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from campaign.run.sweep import DEAD, SweepRecord, sweep_state
from campaign.ui.tables import duration_text, format_table


def sweep_status_dict(record: SweepRecord, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    state = sweep_state(record)
    members = [
        {**asdict(member), "duration_s": member.duration_s(now), "cost_usd": member.cost_usd(now)}
        for member in record.members
    ]
    costs = [m["cost_usd"] for m in members if m["cost_usd"] is not None]
    return {
        "sweep": record.sweep_id,
        "state": state,
        "reason": _reason(record, state),
        "campaign_file": record.campaign_file,
        "selection": record.selection,
        "commit": record.commit,
        "target": record.target,
        "store": record.store,
        "created_at": record.created_at,
        "members": members,
        "cost_usd": sum(costs) if costs else None,
    }


def _reason(record: SweepRecord, state: str) -> str:
    if state == DEAD:
        return (
            f"the campaign process driving it (pid {record.driver.get('pid')}) is gone; "
            f"`campaign resume {record.sweep_id}` continues it"
        )
    return ""


def format_sweep_status(document: dict[str, Any]) -> str:
    head = f"sweep {document['sweep']}: {document['state']}" + (
        f" ({document['reason']})" if document["reason"] else ""
    )
    lines = [
        head,
        f"  campaign {document['campaign_file']} · selection {document['selection'] or 'default'} · commit "
        f"{(document['commit'] or '')[:12]} · target {document['target']} · store {document['store']}",
        "",
    ]
    rows: list[tuple[str, ...]] = [
        ("instance type", "nodes", "state", "run", "duration", "$/h", "cost so far", "reason / superseded")
    ]
    for member in document["members"]:
        rows.append(_row(member))
    lines += format_table(rows, indent="  ")
    total = document["cost_usd"]
    lines.append(f"  cost so far: {_usd(total)}" + ("" if total is not None else " (no hourly price recorded)"))
    return "\n".join(lines)


def _row(member: dict[str, Any]) -> tuple[str, ...]:
    detail = member["reason"]
    if member.get("cluster"):  # a sweep of clusters: the cluster its run brought up and down
        detail = f"cluster {member['cluster']}" + ("; " + detail if detail else "")
    if member["superseded"]:
        detail = (detail + "; " if detail else "") + "superseded: " + ", ".join(member["superseded"])
    return (
        member["instance_type"],
        str(member["nodes"]),
        member["state"],
        member["run_id"] or "-",
        duration_text(member["duration_s"]) if member["duration_s"] is not None else "-",
        "-" if member["usd_per_hour"] is None else f"{member['usd_per_hour']:.4f}",
        _usd(member["cost_usd"]),
        detail,
    )


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"
