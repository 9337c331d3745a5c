"""What an instance-hour costs: the AWS Price List API (on-demand), EC2's spot price history (spot), else the
dated offline table shipped beside this module (prices.json: its header says the date and the source).

`hourly_price` never raises for an unknown price: it returns a Price with usd_per_hour NaN and the reason in
`source`, and the caller shows a WARN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("prices.json")
PRICING_REGION = "us-east-1"  # the Price List API answers there (and in ap-south-1, eu-central-1)


@dataclass(frozen=True)
class Price:
    instance_type: str
    usd_per_hour: float  # NaN: unknown (source says why)
    source: str
    as_of: str

    @property
    def known(self) -> bool:
        return not math.isnan(self.usd_per_hour)


def hourly_price(
    instance_type: str,
    region: str,
    *,
    spot: bool = False,
    pricing_client: Any = None,
    ec2_client: Any = None,
) -> Price:
    """The price of one instance-hour of instance_type in region (Linux, shared tenancy)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if spot:
            return _spot_price(ec2_client or _client("ec2", region), instance_type)
        return _list_price(pricing_client or _client("pricing", PRICING_REGION), instance_type, region)
    except (BotoCoreError, ClientError, LookupError, ValueError) as err:
        why = f"{'EC2 spot price history' if spot else 'the Price List API'} did not answer ({_first_line(err)})"
    return offline_price(instance_type, region, why)


def offline_price(instance_type: str, region: str, why: str = "") -> Price:
    table = _table()
    found = table["prices"].get(region, {}).get(instance_type)
    prefix = f"{why}; " if why else ""
    if found is None:
        return Price(
            instance_type,
            math.nan,
            f"{prefix}the offline table ({TABLE.name}, {table['as_of']}) has no price for {instance_type} in {region}",
            "",
        )
    return Price(instance_type, float(found), f"{prefix}offline table {TABLE.name}", str(table["as_of"]))


def _list_price(client: Any, instance_type: str, region: str) -> Price:
    filters = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    answer = client.get_products(
        ServiceCode="AmazonEC2",
        Filters=[{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in filters.items()],
        MaxResults=10,
    )
    found: list[tuple[float, str]] = []
    for text in answer.get("PriceList", []):
        product = json.loads(text) if isinstance(text, str) else text
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "nan"))
                if usd > 0:
                    found.append((usd, str(product.get("publicationDate", ""))[:10]))
    if not found:
        raise LookupError(f"no on-demand Linux price for {instance_type} in {region}")
    usd, published = max(found)
    return Price(instance_type, usd, "AWS Price List API (on-demand)", published)


def _spot_price(client: Any, instance_type: str) -> Price:
    now = datetime.now(UTC)
    answer = client.describe_spot_price_history(
        InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"], StartTime=now, MaxResults=100
    )
    prices = [float(item["SpotPrice"]) for item in answer.get("SpotPriceHistory", [])]
    if not prices:
        raise LookupError(f"no spot price for {instance_type}")
    return Price(instance_type, max(prices), "EC2 spot price history (the dearest zone now)", now.date().isoformat())


def _client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2})
    return boto3.client(service, region_name=region, config=config)


@cache
def _table() -> dict:
    return dict(json.loads(TABLE.read_text(encoding="utf-8")))


def _first_line(err: Exception) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]
