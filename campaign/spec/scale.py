"""Scale factors as canonical text: '1', '10', '0.01' (never '1.0' or '1e1')."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def canonical_sf(text: str) -> str:
    """'1.0' -> '1', '0.010' -> '0.01'; ValueError for anything that is not a number > 0."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise ValueError(f"'{text}' is not a finite number")
    if value <= 0:
        raise ValueError(f"'{text}' must be greater than 0")
    return format(value.normalize(), "f")
