"""The sweep's fleet before paying: every instance type exists, is offered in the region, and fits the stages.

Offline first (botocore ships both lists): a type that is not in the EC2 service model's InstanceType enum,
or a region in no partition of botocore's endpoints, is refused with the closest names. Then EC2 itself:
`describe-instance-type-offerings` (offered in the region) and `describe-instance-types` (vCPUs, memory,
architecture) for the types that passed. Each type runs `nodes` instances, one type at a time.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from campaign.planning.verdict import Verdict
from campaign.prebuilt.artifact import PREFIX as PREBUILT_PREFIX
from campaign.preflight.capacity import Needs

TYPES_CHECK = "instance types"
REGION_CHECK = "aws region"


@dataclass(frozen=True)
class TypeFacts:
    """What EC2 says of one instance type in the region."""

    instance_type: str
    vcpus: int
    memory_gib: float
    arch: str  # EC2's name: x86_64 or arm64


@cache
def known_instance_types() -> frozenset[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    return frozenset(model.shape_for("InstanceType").enum)


@cache
def known_regions() -> frozenset[str]:
    import botocore.session

    endpoints = botocore.session.get_session().get_component("data_loader").load_data("endpoints")
    return frozenset(region for partition in endpoints["partitions"] for region in partition["regions"])


def botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


def close_to(name: str, known: Iterable[str]) -> str:
    """' (did you mean a, b?)' or '' when nothing is close."""
    matches = difflib.get_close_matches(name.lower(), sorted(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(matches)}?)" if matches else ""


def offline_verdicts(types: Sequence[str], region: str) -> list[Verdict]:
    """Refusals for a region or type names botocore does not know; nothing when all are known."""
    verdicts = []
    if region not in known_regions():
        verdicts.append(
            Verdict(
                REGION_CHECK,
                False,
                f"{region!r} is not an AWS region botocore {botocore_version()} knows{close_to(region, known_regions())}",
                ("fix: --region NAME, or region in .campaign/config.toml [aws]",),
            )
        )
    unknown = [t for t in types if t not in known_instance_types()]
    if unknown:
        verdicts.append(
            Verdict(
                TYPES_CHECK,
                False,
                "; ".join(f"{t!r} is not an EC2 instance type{close_to(t, known_instance_types())}" for t in unknown),
                (
                    f"checked against the {len(known_instance_types())} types botocore {botocore_version()} lists; "
                    "fix: --instance-types A,B or instance_type in .campaign/config.toml [aws]",
                ),
            )
        )
    return verdicts


def describe_fleet(ec2: Any, types: Sequence[str], region: str) -> tuple[dict[str, TypeFacts], list[Verdict]]:
    """The facts of each type offered in region; a refusal naming those that are not."""
    answer = ec2.describe_instance_type_offerings(
        LocationType="region",
        Filters=[{"Name": "location", "Values": [region]}, {"Name": "instance-type", "Values": list(types)}],
    )
    offered = {o["InstanceType"] for o in answer.get("InstanceTypeOfferings", [])}
    missing = [t for t in types if t not in offered]
    verdicts = []
    if missing:
        verdicts.append(
            Verdict(
                TYPES_CHECK,
                False,
                f"not offered in {region}: {', '.join(missing)} (EC2 describe-instance-type-offerings)",
                ("fix: choose types offered there, or another --region",),
            )
        )
    present = [t for t in types if t in offered]
    described: dict[str, TypeFacts] = {}
    if present:
        for item in ec2.describe_instance_types(InstanceTypes=present)["InstanceTypes"]:
            described[item["InstanceType"]] = TypeFacts(
                instance_type=item["InstanceType"],
                vcpus=int(item["VCpuInfo"]["DefaultVCpus"]),
                memory_gib=item["MemoryInfo"]["SizeInMiB"] / 1024,
                arch=item["ProcessorInfo"]["SupportedArchitectures"][0],
            )
    return {t: described[t] for t in present if t in described}, verdicts


def fleet_verdict(facts: dict[str, TypeFacts], nodes: int, region: str, prebuilt: dict[str, str]) -> Verdict:
    """What each offered type is (ok): vCPUs, memory, architecture, whether a prebuilt exists for it."""
    parts = [
        f"{nodes} × {f.instance_type} ({f.vcpus} vCPUs, {f.memory_gib:g} GiB, {f.arch}; {prebuilt.get(f.arch, 'prebuilt not looked up: no store yet')})"
        for f in facts.values()
    ]
    return Verdict(TYPES_CHECK, True, f"offered in {region}: " + "; ".join(parts))


def capacity_verdict(needs: Needs, facts: dict[str, TypeFacts], root_volume_gb: int) -> Verdict | None:
    """The stages' declared memory against each type's, their disk against the root volume."""
    if not needs.declared:
        return None
    if needs.problems:
        return Verdict("capacity", False, "a capacity template does not compute: " + "; ".join(needs.problems))
    short = []
    if needs.memory is not None:
        small = [f for f in facts.values() if f.memory_gib < needs.memory.gb]
        short += [
            f"{f.instance_type} has {f.memory_gib:g} GiB of memory; {needs.memory.stage_run} needs "
            f"{needs.memory.gb:.1f} GiB (choose a larger type)"
            for f in small
        ]
    if needs.disk is not None and needs.disk.gb > root_volume_gb:
        short.append(
            f"the selection needs {needs.disk.gb:.1f} GiB of disk (largest: {needs.disk.stage_run}) and the root "
            f"volume has {root_volume_gb} GiB: set root_volume_gb in .campaign/config.toml [aws] to "
            f"{int(needs.disk.gb) + 10} or more"
        )
    if short:
        return Verdict("capacity", False, "; ".join(short))
    seen = [
        f"memory {needs.memory.gb:.1f} GiB" if needs.memory else "",
        f"disk {needs.disk.gb:.1f} GiB" if needs.disk else "",
    ]
    return Verdict(
        "capacity",
        True,
        f"needs {', '.join(s for s in seen if s)}: every type and the {root_volume_gb} GiB root volume fit",
    )


def prebuilt_by_arch(store: Any, commit: str | None, archs: Iterable[str], has_build: bool) -> dict[str, str]:
    """Per EC2 architecture: whether the store holds a prebuilt of the commit for it (else it builds there)."""
    if not has_build:
        return {arch: "nothing to build" for arch in archs}
    found = {}
    for arch in archs:
        machine = {"arm64": "aarch64"}.get(arch, arch)  # what platform.machine() says on the instance
        keys = store.list_keys(f"{PREBUILT_PREFIX}/{commit}/{machine}/") if commit else []
        found[arch] = f"prebuilt for {machine} in the store" if keys else f"no prebuilt for {machine}: builds there"
    return found
