"""What the user asked for: 'sf1,sf10' -> ('1', '10'), checked against the campaign's scale factors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign.errors import InputError
from campaign.spec.scale import canonical_sf

if TYPE_CHECKING:
    from campaign.spec.model import CampaignSpec


def parse_selection(text: str, spec: CampaignSpec) -> tuple[str, ...]:
    """Canonical scale factors in the order given; InputError names the bad item and the allowed ones."""
    allowed = ", ".join(f"sf{sf}" for sf in spec.scale_factors)
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise InputError(
            f"selection '{text}' has an empty item. Write scale factors like sf1,sf10 "
            f"(allowed in {spec.path.name}: {allowed})."
        )
    selected: list[str] = []
    for item in items:
        sf = _parse_item(item, allowed)
        if sf not in spec.scale_factors:
            raise InputError(
                f"selection '{text}': {item} is not a scale factor of campaign '{spec.name}'. "
                f"Allowed: {allowed} (scale_factors in {spec.path.name})."
            )
        if sf in selected:
            raise InputError(f"selection '{text}': sf{sf} is selected twice. Name each scale factor once.")
        selected.append(sf)
    return tuple(selected)


def _parse_item(item: str, allowed: str) -> str:
    if not item.lower().startswith("sf"):
        raise InputError(f"selection item '{item}' must start with 'sf', e.g. sf1 or sf0.01 (allowed: {allowed}).")
    try:
        return canonical_sf(item[2:])
    except ValueError as err:
        raise InputError(f"selection item '{item}': the scale factor {err} (allowed: {allowed}).") from None
