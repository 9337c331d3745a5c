"""The AWS target's preflight of the sweep's fleet, before anything is created or paid for: the types
(offline names, then EC2), the stages' capacity on each, the vCPU quotas, and the cost with --max-cost.

Called by campaign.targets.aws.target.preflight for `plan` and `run` alike; each check is a Verdict, so a
refusal blocks `run` (exit 3) and `plan` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from campaign.planning.plan import RUN, Plan
from campaign.planning.verdict import Verdict
from campaign.preflight.capacity import selection_needs
from campaign.targets.aws import fleet
from campaign.targets.aws.costs import TypeCost, cost_verdict, expected_hours
from campaign.targets.aws.pricing import hourly_price
from campaign.targets.aws.quotas import quota_needs, quota_verdicts
from campaign.targets.aws.settings import AwsSettings


@dataclass(frozen=True)
class FleetRequest:
    """The sweep's whole fleet: each type runs `nodes` instances, one type after the other."""

    types: tuple[str, ...]
    nodes: int = 1
    max_cost: float | None = None


@dataclass(frozen=True)
class FleetReport:
    request: FleetRequest
    facts: dict[str, fleet.TypeFacts] = field(default_factory=dict)
    costs: tuple[TypeCost, ...] = ()


def check_fleet(
    plan: Plan, settings: AwsSettings, request: FleetRequest, *, online: bool, store: Any
) -> tuple[list[Verdict], FleetReport]:
    """Verdicts for the fleet; online: credentials work (EC2 and Service Quotas are asked)."""
    region = settings.region
    verdicts = fleet.offline_verdicts(request.types, region)
    valid = [t for t in request.types if t in fleet.known_instance_types()]
    if not valid or region not in fleet.known_regions():
        return verdicts, FleetReport(request)
    ec2 = _client("ec2", region) if online else None
    facts: dict[str, fleet.TypeFacts] = {}
    if ec2 is not None:
        facts, found = _describe(ec2, valid, region)
        verdicts += found + _fleet_checks(plan, settings, request, facts, store)
    hours = expected_hours(store, plan.spec.name, settings.max_hours)
    costs = tuple(
        TypeCost(hourly_price(t, region, spot=settings.spot, ec2_client=ec2), request.nodes, hours) for t in valid
    )
    verdicts.append(cost_verdict(list(costs), request.max_cost))
    return verdicts, FleetReport(request, facts, costs)


def _describe(ec2: Any, types: list[str], region: str) -> tuple[dict[str, fleet.TypeFacts], list[Verdict]]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fleet.describe_fleet(ec2, types, region)
    except (BotoCoreError, ClientError) as err:
        return {}, [
            Verdict(
                fleet.TYPES_CHECK,
                False,
                f"EC2 did not describe {', '.join(types)} in {region}: {str(err).splitlines()[0]}",
                ("the credentials need ec2:DescribeInstanceTypeOfferings and ec2:DescribeInstanceTypes",),
            )
        ]


def _fleet_checks(
    plan: Plan, settings: AwsSettings, request: FleetRequest, facts: dict[str, fleet.TypeFacts], store: Any
) -> list[Verdict]:
    if not facts:
        return []
    archs = sorted({f.arch for f in facts.values()})
    prebuilt = fleet.prebuilt_by_arch(store, plan.commit, archs, plan.spec.build_stage is not None) if store else {}
    verdicts = [fleet.fleet_verdict(facts, request.nodes, settings.region, prebuilt)]
    needs = selection_needs(plan.spec, [p.run for p in plan.runs if p.action == RUN])
    capacity = fleet.capacity_verdict(needs, facts, settings.root_volume_gb)
    if capacity is not None:
        verdicts.append(capacity)
    quota, uncovered = quota_needs(facts.values(), request.nodes, spot=settings.spot)
    return verdicts + quota_verdicts(
        _client("service-quotas", settings.region), quota, uncovered, settings.region, request.nodes
    )


def _client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)
