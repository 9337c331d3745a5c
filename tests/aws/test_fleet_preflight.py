"""The sweep's fleet is checked before anything is paid for (issue 13): `campaign plan`/`run --target aws
--instance-types A,B --max-cost USD` against moto's server on 127.0.0.1, with the real boto3 clients.

Real: EC2 describe-instance-type-offerings / describe-instance-types / describe-spot-price-history (moto
answers them from its own catalogue), the Service Quotas wire protocol (moto's server), S3, and the real
`terraform plan` where a plan passes. Fakes, each because moto cannot answer it:
- Service Quotas data: moto 5.2's server knows only the `vpc` service's quotas (get_service_quota raises
  NoSuchResource for `ec2`), so `ec2_quotas` makes moto's backend answer the EC2 vCPU quotas the test sets
  (the request and answer still go through boto3 and moto's HTTP server).
- the Price List API: moto has none (it answers HTTP 500), so the plans here price from the dated offline
  table, and say so; `FakePricingClient` (a named fake) returns a get_products document of the documented
  shape to test its parsing.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.targets.aws import pricing
from campaign.targets.aws.fleet import close_to, known_instance_types
from campaign.targets.aws.quotas import quota_of
from tests.core.conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, git, make_repo

STANDARD = "L-1216C47A"  # Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances
STANDARD_SPOT = "L-34B43A08"


@pytest.fixture
def ec2_quotas(monkeypatch):
    """A fake of the data only: moto's Service Quotas backend answers these EC2 quotas (code -> vCPUs)."""
    from moto.servicequotas.models import ServiceQuotasBackend

    values: dict[str, float] = {STANDARD: 64.0, STANDARD_SPOT: 64.0}
    original = ServiceQuotasBackend.get_service_quota

    def get_service_quota(self, service_code: str, quota_code: str) -> dict:
        if service_code == "ec2" and quota_code in values:
            return {"ServiceCode": "ec2", "QuotaCode": quota_code, "QuotaName": quota_code, "Value": values[quota_code]}
        return original(self, service_code, quota_code)

    monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", get_service_quota)
    return values


def fleet_repo(tmp_path: Path, campaign: str = TOY_CAMPAIGN) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo = make_repo(
        tmp_path / "repo", {"campaign.yaml": campaign, "scripts/gen.sh": GEN_SH, "scripts/bench.py": BENCH_PY}
    )
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    return repo


@pytest.fixture
def aws_repo(tf_moto, ec2_quotas, tmp_path: Path, monkeypatch):
    """A pushed toy campaign, its bucket on moto, a config for the AWS target, and moto-bound workspaces."""
    return configure(tf_moto, tmp_path, monkeypatch, fleet_repo(tmp_path))


def configure(tf_moto, tmp_path: Path, monkeypatch, repo: Path, extra: str = "") -> Path:
    bucket = f"fleet-{uuid.uuid4().hex[:12]}"
    tf_moto.client("s3").create_bucket(Bucket=bucket)
    config = tmp_path / "config.toml"
    config.write_text(f'[aws]\nbucket = "{bucket}"\nregion = "us-east-1"\nmax_hours = 8\n{extra}')
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(config))
    monkeypatch.chdir(repo)
    tf_moto.override_workspaces(monkeypatch)
    return repo


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    output = capsys.readouterr()
    return code, output.out + output.err


def live_instances(tf_moto) -> int:
    reservations = tf_moto.client("ec2").describe_instances()["Reservations"]
    return sum(1 for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated")


def test_an_unknown_type_and_region_are_refused_offline_with_a_suggestion(aws_repo, capsys):
    code, text = cli(capsys, "plan", "--target", "aws", "--instance-types", "c7i.xlarge,c7i.xlarg,m7gg.large")
    assert code == 3, text
    assert "FAIL instance types: 'c7i.xlarg' is not an EC2 instance type (did you mean c7i.xlarge" in text
    assert "'m7gg.large' is not an EC2 instance type (did you mean m7g.large" in text
    assert f"checked against the {len(known_instance_types())} types botocore" in text
    assert "terraform plan" not in text  # refused before Terraform plans anything
    code, text = cli(capsys, "plan", "--target", "aws", "--region", "us-east-7")
    assert code == 3, text
    assert "FAIL aws region: 'us-east-7' is not an AWS region botocore" in text
    assert "(did you mean us-east-2, us-east-1" in text


def test_a_type_not_offered_in_the_region_is_refused_before_anything_is_created(aws_repo, tf_moto, capsys):
    """hpc7a.96xlarge is a real type that moto's catalogue (like AWS) does not offer in us-east-1."""
    before = live_instances(tf_moto)
    code, text = cli(capsys, "run", "--target", "aws", "--instance-types", "c7i.xlarge,hpc7a.96xlarge")
    assert code == 3, text
    assert "instance types: not offered in us-east-1: hpc7a.96xlarge (EC2 describe-instance-type-offerings)" in text
    assert "run:" not in text  # no run id: nothing was recorded, planned or applied
    assert live_instances(tf_moto) == before
    assert not (aws_repo / ".campaign" / "aws").exists()


def test_a_quota_shortfall_names_the_quota_its_value_and_the_need(aws_repo, tf_moto, ec2_quotas, capsys):
    ec2_quotas[STANDARD] = 16.0
    before = live_instances(tf_moto)
    code, text = cli(capsys, "run", "--target", "aws", "--instance-types", "c7i.xlarge,c7i.8xlarge")
    assert code == 3, text
    assert (
        "vcpu quota: quota L-1216C47A (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances) in "
        "us-east-1 is 16 vCPUs; c7i.8xlarge × 1 needs 32"
    ) in text
    assert "--quota-code L-1216C47A --desired-value 32 --region us-east-1" in text
    assert live_instances(tf_moto) == before
    ec2_quotas[STANDARD] = 64.0  # enough now: the worst case is what refuses `run`
    code, text = cli(capsys, "run", "--target", "aws", "--instance-types", "c7i.xlarge,c7i.8xlarge", "--max-cost", "5")
    assert code == 3, text
    assert "cost: the sweep's worst case $12.85 exceeds --max-cost $5.00 (dearest: 1 × c7i.8xlarge, $11.42)" in text
    assert live_instances(tf_moto) == before


def test_nodes_multiply_the_quota_need_and_the_cost(aws_repo, ec2_quotas):
    """nodes comes from RunRequest.options (a cluster sweep): 3 × c7i.2xlarge is 24 vCPUs of a 16 quota."""
    from campaign.targets.aws.adapter import AwsTarget
    from campaign.targets.base import RunRequest

    ec2_quotas[STANDARD] = 16.0
    request = RunRequest(
        campaign_file=Path("campaign.yaml"), options={"instance_types": ("c7i.2xlarge",), "nodes": 3, "max_cost": None}
    )
    prepared = AwsTarget().preflight(request)
    refusals = [v.summary for v in prepared.plan.refusals]
    assert refusals == [
        "quota L-1216C47A (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances) "
        "in us-east-1 is 16 vCPUs; c7i.2xlarge × 3 needs 24"
    ], refusals
    cost = AwsTarget().describe_json(prepared)["aws"]["cost"]
    assert cost["worst_case_usd"] == pytest.approx(round(0.357 * 3 * 8, 2))


def test_the_plan_shows_cost_per_type_and_in_total_and_max_cost_refuses(aws_repo, capsys):
    code, text = cli(capsys, "plan", "--target", "aws", "--instance-types", "c7i.xlarge,c7g.xlarge")
    assert code == 0, text
    assert "ok   instance types: offered in us-east-1: 1 × c7i.xlarge (4 vCPUs, 8 GiB, x86_64;" in text
    assert "1 × c7g.xlarge (4 vCPUs, 8 GiB, arm64;" in text
    assert "ok   vcpu quota: L-1216C47A (Running On-Demand Standard" in text
    assert (
        "cost (expected 8.00 h from max_hours (no finished run of this campaign in the store); worst case 8 h):" in text
    )
    assert (
        "1 × c7i.xlarge at $0.1785/h: expected $1.43, worst case $1.43 (offline table prices.json, 2025-06-01)" in text
    )
    assert "    prices: the Price List API did not answer (An error occurred (500)" in text  # moto has no Pricing API
    assert "1 × c7g.xlarge at $0.1450/h: expected $1.16, worst case $1.16" in text
    assert "total: expected $2.59, worst case $2.59" in text
    assert "ok   terraform plan:" in text

    code, text = cli(capsys, "plan", "--target", "aws", "--instance-types", "c7i.xlarge,c7g.xlarge", "--max-cost", "2")
    assert code == 3, text
    assert "FAIL cost: the sweep's worst case $2.59 exceeds --max-cost $2.00 (dearest: 1 × c7i.xlarge, $1.43)" in text

    code, text = cli(capsys, "plan", "--target", "aws", "--instance-types", "c7i.xlarge", "--max-cost", "2", "--json")
    document = json.loads(text[text.index("{") :])
    assert code == 0
    assert document["aws"]["cost"]["worst_case_usd"] == 1.43
    assert document["aws"]["cost"]["per_type"][0]["price_source"].endswith("offline table prices.json")
    assert document["aws"]["instance_types"] == ["c7i.xlarge"]


def test_the_stages_memory_and_disk_are_checked_against_each_type_and_the_root_volume(
    tf_moto, ec2_quotas, tmp_path: Path, monkeypatch, capsys
):
    campaign = TOY_CAMPAIGN.replace(
        '    produces: ["data/sf{{ sf }}"]\n',
        '    produces: ["data/sf{{ sf }}"]\n    requires: {memory_gb: "{{ 4 + sf * 4 }}", disk_gb: "{{ sf * 20 }}"}\n',
        1,
    )
    configure(tf_moto, tmp_path, monkeypatch, fleet_repo(tmp_path, campaign), "root_volume_gb = 100\n")
    code, text = cli(capsys, "plan", "sf10", "--target", "aws", "--instance-types", "c7i.xlarge,r7i.2xlarge")
    assert code == 3, text
    assert "FAIL capacity: c7i.xlarge has 8 GiB of memory; gen[sf10] needs 44.0 GiB (choose a larger type)" in text
    assert "r7i.2xlarge has" not in text  # 64 GiB: enough
    assert "the selection needs 200.0 GiB of disk (largest: gen[sf10]) and the root volume has 100 GiB" in text
    code, text = cli(capsys, "plan", "sf0.01", "--target", "aws", "--instance-types", "c7i.xlarge")
    assert "ok   capacity: needs memory 4.0 GiB, disk 0.2 GiB: every type and the 100 GiB root volume fit" in text


def test_spot_prices_come_from_ec2_spot_price_history(tf_moto):
    """moto's spot price history answers $0.00001 for every zone: the price and its source are EC2's."""
    price = pricing.hourly_price("c7i.xlarge", "us-east-1", spot=True, ec2_client=tf_moto.client("ec2"))
    assert (price.usd_per_hour, price.source) == (0.00001, "EC2 spot price history (the dearest zone now)")
    assert quota_of("c7i.xlarge", spot=True) == (
        STANDARD_SPOT,
        "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    )


class FakePricingClient:
    """A named fake of the Price List API (moto has none): answers get_products with the documented shape."""

    def __init__(self, price_list: list[str]):
        self.price_list = price_list
        self.calls: list[dict] = []

    def get_products(self, **request: object) -> dict:
        self.calls.append(request)
        return {"FormatVersion": "aws_v1", "PriceList": self.price_list}


def product(usd: str) -> str:
    return json.dumps(
        {
            "product": {"attributes": {"instanceType": "c7i.xlarge", "regionCode": "eu-west-1"}},
            "publicationDate": "2026-11-20T10:00:00Z",
            "terms": {
                "OnDemand": {
                    "SKU.JRTCKXETXF": {
                        "priceDimensions": {"SKU.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}
                    }
                }
            },
        }
    )


def test_the_price_list_api_answer_is_parsed_and_filtered_for_linux_on_demand():
    client = FakePricingClient([product("0.1980000000")])
    price = pricing.hourly_price("c7i.xlarge", "eu-west-1", pricing_client=client)
    assert price == pricing.Price("c7i.xlarge", 0.198, "AWS Price List API (on-demand)", "2026-11-20")
    filters = {f["Field"]: f["Value"] for f in client.calls[0]["Filters"]}
    assert filters["regionCode"] == "eu-west-1" and filters["operatingSystem"] == "Linux"
    assert filters["tenancy"] == "Shared" and filters["capacitystatus"] == "Used"


def test_an_unknown_price_is_a_warning_not_a_crash():
    """No price from the API (the fake answers nothing) and none in the offline table for that region."""
    price = pricing.hourly_price("c7i.xlarge", "ap-southeast-7", pricing_client=FakePricingClient([]))
    assert math.isnan(price.usd_per_hour) and not price.known
    assert "no on-demand Linux price for c7i.xlarge in ap-southeast-7" in price.source
    assert "has no price for c7i.xlarge in ap-southeast-7" in price.source
    from campaign.targets.aws.costs import Hours, TypeCost, cost_verdict

    verdict = cost_verdict([TypeCost(price, 1, Hours(2, 8, "max_hours"))], max_cost=10)
    assert verdict.ok and verdict.warning
    assert (
        "no price for c7i.xlarge" in verdict.summary
        and "--max-cost $10.00 covers only the priced types" in verdict.summary
    )


def test_suggestions_come_from_botocores_lists():
    assert close_to("c7i.xlarg", known_instance_types()).startswith(" (did you mean c7i.xlarge")
    assert close_to("zzzzzz", known_instance_types()) == ""


def test_expected_hours_come_from_the_last_finished_run_of_the_campaign(aws_repo, capsys):
    """A real local run of the toy campaign into the AWS target's bucket, then the plan's cost uses its hours."""
    bucket = next(
        line.split('"')[1]
        for line in Path(os.environ["CAMPAIGN_CONFIG"]).read_text().splitlines()
        if line.startswith("bucket")
    )
    code, text = cli(capsys, "run", "sf0.01", "--store", f"s3://{bucket}/campaign")
    assert code == 0, text
    run_id = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("run: "))
    code, text = cli(capsys, "plan", "--target", "aws", "--instance-types", "c7i.xlarge")
    assert code == 0, text
    assert f"cost (expected 0.00 h from the last finished run, {run_id}; worst case 8 h):" in text
    assert "1 × c7i.xlarge at $0.1785/h: expected $0.00, worst case $1.43" in text


@pytest.mark.parametrize(
    ("instance_type", "code"),
    [
        ("c7i.xlarge", STANDARD),
        ("z1d.large", STANDARD),
        ("i4i.xlarge", STANDARD),
        ("t3.micro", STANDARD),
        ("g5.xlarge", "L-DB2E81BA"),
        ("vt1.3xlarge", "L-DB2E81BA"),
        ("p4d.24xlarge", "L-417A185B"),
        ("x2idn.16xlarge", "L-7295265B"),
        ("f1.2xlarge", "L-74FC7D96"),
        ("inf2.xlarge", "L-1945791B"),
        ("trn1.2xlarge", "L-2C3B7624"),
        ("dl1.24xlarge", "L-6E869C2A"),
        ("u-6tb1.56xlarge", "L-43DA4232"),
        ("mac2.metal", None),  # dedicated hosts: a WARN, not a guess
        ("hpc7a.96xlarge", None),
    ],
)
def test_each_family_counts_against_its_own_on_demand_quota(instance_type, code):
    quota = quota_of(instance_type, spot=False)
    assert (quota[0] if quota else None) == code


def test_a_spot_sweep_checks_the_spot_quota_and_prices_from_spot_history(aws_repo, ec2_quotas):
    from campaign.targets.aws.adapter import AwsTarget
    from campaign.targets.base import RunRequest

    Path(os.environ["CAMPAIGN_CONFIG"]).write_text(Path(os.environ["CAMPAIGN_CONFIG"]).read_text() + "spot = true\n")
    ec2_quotas[STANDARD_SPOT] = 4.0
    request = RunRequest(campaign_file=Path("campaign.yaml"), options={"instance_types": ("c7i.2xlarge",)})
    prepared = AwsTarget().preflight(request)
    assert [v.summary for v in prepared.plan.refusals] == [
        "quota L-34B43A08 (All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests) in us-east-1 is 4 vCPUs; "
        "c7i.2xlarge × 1 needs 8"
    ]
    cost = AwsTarget().describe_json(prepared)["aws"]["cost"]["per_type"][0]
    assert (cost["usd_per_hour"], cost["price_source"]) == (0.00001, "EC2 spot price history (the dearest zone now)")
