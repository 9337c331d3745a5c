"""Rewrite campaign/targets/aws/prices.json (the offline price table) from the AWS Price List API.

Needs credentials allowed pricing:GetProducts (free; no resource is created):

    .venv/bin/python infra-validation/refresh_prices.py [--region eu-west-1 ...]

Prints the (region, type) pairs the API had no price for; their old values are kept.
"""

from __future__ import annotations

import argparse
import json

from campaign.targets.aws.price_table import refresh, write_table
from campaign.targets.aws.pricing import PRICING_REGION, TABLE, _client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", action="append", default=[], help="add a region (the first region's types)")
    args = parser.parse_args()
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    missing = refresh(_client("pricing", PRICING_REGION), table, regions=args.region)
    write_table(table)
    for pair in missing:
        print(f"no price from the API (old value kept): {pair}")
    print(f"{TABLE}: {sum(len(v) for v in table['prices'].values())} prices as of {table['as_of']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
