"""The one clock format of campaign's records: UTC, ISO 8601, milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def compact_stamp() -> str:
    """Sortable and safe in names: 20261122T181500Z."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
