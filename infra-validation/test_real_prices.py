"""The offline price table (campaign/targets/aws/prices.json) against the real Price List API: a table more
than 25 % off for common types should be refreshed with infra-validation/refresh_prices.py. Free to run."""

from __future__ import annotations

import pytest

from campaign.targets.aws import pricing


@pytest.mark.real_aws
@pytest.mark.parametrize("instance_type", ["c7i.xlarge", "m7i.2xlarge", "c7g.xlarge", "r7i.xlarge"])
def test_offline_table_is_close_to_the_live_price(instance_type):
    live = pricing.hourly_price(instance_type, "us-east-1")
    assert live.source.startswith("AWS Price List API"), live.source
    table = pricing.offline_price(instance_type, "us-east-1")
    assert abs(table.usd_per_hour / live.usd_per_hour - 1) <= 0.25, (table, live)
