"""The offline price table is refreshed from the Price List API (infra-validation/refresh_prices.py).

moto has no Price List API, so `FakePricingClient` (a named fake from test_fleet_preflight) answers get_products
in the documented shape; what is tested is the refresh: every pair asked, new regions filled, misses kept, the
table dated and rewritten whole.
"""

from __future__ import annotations

import json
from datetime import date

from campaign.targets.aws import pricing
from campaign.targets.aws.price_table import API_SOURCE, refresh, write_table
from tests.aws.test_fleet_preflight import FakePricingClient, product


class PerTypePricing(FakePricingClient):
    """The named fake, answering per instance type (no product for a type it does not know)."""

    def __init__(self, usd_by_type: dict[str, str]):
        super().__init__([])
        self.usd_by_type = usd_by_type

    def get_products(self, **request: object) -> dict:
        filters = {f["Field"]: f["Value"] for f in request["Filters"]}  # type: ignore[index, union-attr]
        self.calls.append(filters)
        usd = self.usd_by_type.get(filters["instanceType"])
        return {"FormatVersion": "aws_v1", "PriceList": [product(usd)] if usd else []}


def test_refresh_updates_every_pair_adds_regions_and_keeps_what_the_api_lacks():
    table = {
        "source": "by hand",
        "as_of": "2025-06-01",
        "prices": {"us-east-1": {"c7i.xlarge": 0.1, "m7i.xlarge": 0.2}},
    }
    client = PerTypePricing({"c7i.xlarge": "0.1785"})

    missing = refresh(client, table, regions=["eu-west-1"], today=date(2026, 12, 1))

    assert table["prices"]["us-east-1"] == {"c7i.xlarge": 0.1785, "m7i.xlarge": 0.2}
    assert table["prices"]["eu-west-1"] == {"c7i.xlarge": 0.1785}
    assert missing == ["eu-west-1 m7i.xlarge", "us-east-1 m7i.xlarge"]
    assert {(c["regionCode"], c["instanceType"]) for c in client.calls} == {
        (region, kind) for region in ("us-east-1", "eu-west-1") for kind in ("c7i.xlarge", "m7i.xlarge")
    }
    assert (table["as_of"], table["source"]) == ("2026-12-01", API_SOURCE)


def test_a_written_table_is_what_hourly_price_falls_back_to(tmp_path, monkeypatch):
    path = tmp_path / "prices.json"
    table = {"source": API_SOURCE, "as_of": "2026-12-01", "prices": {"eu-west-1": {"c7g.xlarge": 0.1451}}}
    write_table(table, path)
    assert json.loads(path.read_text()) == table
    assert not list(tmp_path.glob("*.partial"))

    monkeypatch.setattr(pricing, "TABLE", path)
    pricing._table.cache_clear()
    try:
        price = pricing.offline_price("c7g.xlarge", "eu-west-1")
    finally:
        pricing._table.cache_clear()
    assert (price.usd_per_hour, price.as_of) == (0.1451, "2026-12-01")


def test_the_shipped_table_is_dated_and_says_how_to_refresh_it():
    table = json.loads(pricing.TABLE.read_text())
    assert date.fromisoformat(table["as_of"]) <= date.today()
    assert "refresh_prices.py" in table["source"]
    assert all(usd > 0 for by_type in table["prices"].values() for usd in by_type.values())
