"""Refreshing the offline price table (prices.json) from the AWS Price List API.

The table is the fallback `hourly_price` uses when the API cannot be reached; its first version was recorded by
hand. `infra-validation/refresh_prices.py` runs `refresh` with real credentials and rewrites the file, dated.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from campaign.targets.aws.pricing import TABLE, _list_price

API_SOURCE = "AWS EC2 On-Demand prices, Linux, shared tenancy, no pre-installed software, from the Price List API"


def refresh(client: Any, table: dict, *, regions: list[str] | None = None, today: date | None = None) -> list[str]:
    """Ask the Price List API for every (region, type) of the table (and of any extra region, the types of the
    first one); update table in place. Returns the pairs the API had no price for (their old values are kept)."""
    prices: dict[str, dict[str, float]] = table["prices"]
    types = sorted({name for by_type in prices.values() for name in by_type})
    missing = []
    for region in sorted(set(prices) | set(regions or [])):
        by_type = prices.setdefault(region, {})
        for instance_type in sorted(set(by_type) or types):
            try:
                by_type[instance_type] = _list_price(client, instance_type, region).usd_per_hour
            except LookupError:
                missing.append(f"{region} {instance_type}")
    table["source"] = API_SOURCE
    table["as_of"] = (today or date.today()).isoformat()
    return missing


def write_table(table: dict, path: Path = TABLE) -> None:
    text = json.dumps(table, indent=1, sort_keys=False) + "\n"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # the table is never left half-written
