"""The vCPU quotas a sweep needs: for each quota an instance family counts against (Service Quotas, service
code ec2; on-demand, or spot when spot), the largest `nodes × vCPUs` among the sweep's types in it (the types
run one at a time). A shortfall names the quota code, its current value and what is needed.

The codes are those `aws service-quotas list-service-quotas --service-code ec2` lists for running instances.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from campaign.planning.verdict import Verdict
from campaign.targets.aws.fleet import TypeFacts

CHECK = "vcpu quota"
# family prefix -> (quota name, on-demand code, spot code); the longest matching prefix wins.
FAMILIES: dict[str, tuple[str, str, str | None]] = {
    "standard": ("Standard (A, C, D, H, I, M, R, T, Z) instances", "L-1216C47A", "L-34B43A08"),
    "g": ("G and VT instances", "L-DB2E81BA", "L-3819A6DF"),
    "vt": ("G and VT instances", "L-DB2E81BA", "L-3819A6DF"),
    "p": ("P instances", "L-417A185B", "L-7212CCBC"),
    "x": ("X instances", "L-7295265B", "L-E3A00192"),
    "f": ("F instances", "L-74FC7D96", "L-88CF9481"),
    "inf": ("Inf instances", "L-1945791B", "L-B5D1601B"),
    "trn": ("Trn instances", "L-2C3B7624", "L-6B0D517C"),
    "dl": ("DL instances", "L-6E869C2A", "L-85EED4F7"),
    "u-": ("High Memory instances", "L-43DA4232", None),
}
STANDARD_LETTERS = "acdhimrtz"
NOT_COVERED = ("mac", "hpc")  # dedicated hosts, or a quota this table does not hold: a WARN, not a guess


@dataclass(frozen=True)
class QuotaNeed:
    code: str
    name: str
    vcpus: int  # the largest nodes × vCPUs of the types in this quota
    instance_type: str  # the type that needs it


def quota_of(instance_type: str, *, spot: bool) -> tuple[str, str] | None:
    """(code, name) of the vCPU quota instance_type counts against; None when this table has none."""
    family = instance_type.split(".")[0].lower()
    if family.startswith(NOT_COVERED):
        return None
    prefixes = sorted((p for p in FAMILIES if p != "standard" and family.startswith(p)), key=len, reverse=True)
    key = prefixes[0] if prefixes else ("standard" if family[:1] in STANDARD_LETTERS else None)
    if key is None:
        return None
    name, on_demand, spot_code = FAMILIES[key]
    code = spot_code if spot else on_demand
    if code is None:
        return None
    return (
        code,
        f"{'All ' + name.replace(' instances', '') + ' Spot Instance Requests' if spot else 'Running On-Demand ' + name}",
    )


def quota_needs(facts: Iterable[TypeFacts], nodes: int, *, spot: bool) -> tuple[list[QuotaNeed], list[str]]:
    """(the largest need per quota, the types no quota here covers)."""
    needs: dict[str, QuotaNeed] = {}
    uncovered = []
    for fact in facts:
        quota = quota_of(fact.instance_type, spot=spot)
        if quota is None:
            uncovered.append(fact.instance_type)
            continue
        need = QuotaNeed(quota[0], quota[1], nodes * fact.vcpus, fact.instance_type)
        if quota[0] not in needs or need.vcpus > needs[quota[0]].vcpus:
            needs[quota[0]] = need
    return list(needs.values()), uncovered


def quota_verdicts(client: Any, needs: list[QuotaNeed], uncovered: list[str], region: str, nodes: int) -> list[Verdict]:
    """One verdict per quota (refused when short), and a WARN for what could not be checked."""
    verdicts = [_quota_verdict(client, need, region, nodes) for need in needs]
    if uncovered:
        verdicts.append(
            Verdict(
                CHECK,
                True,
                f"not checked for {', '.join(uncovered)}: campaign knows no vCPU quota of their family; "
                "see the EC2 console's Service Quotas before running",
                warning=True,
            )
        )
    return verdicts


def _quota_verdict(client: Any, need: QuotaNeed, region: str, nodes: int) -> Verdict:
    from botocore.exceptions import BotoCoreError, ClientError

    what = f"{need.code} ({need.name}) in {region}"
    try:
        value = float(client.get_service_quota(ServiceCode="ec2", QuotaCode=need.code)["Quota"]["Value"])
    except (BotoCoreError, ClientError, KeyError) as err:
        return Verdict(
            CHECK,
            True,
            f"{what} could not be read ({str(err).splitlines()[0]}); {need.instance_type} × {nodes} needs "
            f"{need.vcpus} vCPUs: check it before running (servicequotas:GetServiceQuota)",
            warning=True,
        )
    if value < need.vcpus:
        return Verdict(
            CHECK,
            False,
            f"quota {what} is {value:g} vCPUs; {need.instance_type} × {nodes} needs {need.vcpus}",
            (
                f"fix: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {need.code} "
                f"--desired-value {need.vcpus} --region {region} (or fewer nodes, or smaller types)",
            ),
        )
    return Verdict(CHECK, True, f"{what}: {value:g} vCPUs cover {need.instance_type} × {nodes} ({need.vcpus})")
