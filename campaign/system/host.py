"""Facts about the machine a plan runs on (local target): CPU flags, cores, model."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostFacts:
    cpu_flags: frozenset[str]
    cpu_model: str
    cores: int

    def missing_flags(self, wanted: tuple[str, ...]) -> list[str]:
        return [flag for flag in wanted if flag not in self.cpu_flags]


def read_host(cpuinfo: Path = Path("/proc/cpuinfo")) -> HostFacts:
    flags: frozenset[str] = frozenset()
    model = platform.processor() or platform.machine()
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
        elif key == "model name":
            model = value.strip()
    return HostFacts(cpu_flags=flags, cpu_model=model, cores=os.cpu_count() or 1)


# The CPU flags a benchmark reader cares about (vector width, crypto, …); the full list is long.
NOTABLE_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "amx_tile",
    "aes",
    "sha_ni",
    "bmi2",
    "neon",
    "asimd",
    "sve",
    "sve2",
)
DMI = Path("/sys/devices/virtual/dmi/id")
IMDS = "http://169.254.169.254"


def fingerprint(cpuinfo: Path = Path("/proc/cpuinfo"), dmi: Path = DMI) -> dict[str, object]:
    """What a benchmark reader must know about the machine: CPU, cores, memory, kernel, OS; on EC2 the
    instance type and AMI (IMDSv2, asked only when the DMI data says the machine is an EC2 instance)."""
    facts = read_host(cpuinfo)
    uname = platform.uname()
    found: dict[str, object] = {
        "cpu_model": facts.cpu_model,
        "cores": facts.cores,
        "arch": uname.machine,
        "cpu_flags": sorted(flag for flag in NOTABLE_FLAGS if flag in facts.cpu_flags),
        "memory_gb": _memory_gb(),
        "kernel": uname.release,
        "os": _os_name(),
        "python": platform.python_version(),
    }
    if on_ec2(dmi):
        found.update(ec2_identity())
    return found


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return platform.system()
    return release.get("PRETTY_NAME", platform.system())


def on_ec2(dmi: Path = DMI) -> bool:
    """True only when the DMI data names Amazon: the one case where the metadata service may be asked."""
    for name in ("sys_vendor", "board_vendor", "board_asset_tag"):
        try:
            text = (dmi / name).read_text().strip()
        except OSError:
            continue
        if "amazon" in text.lower() or (name == "board_asset_tag" and text.startswith("i-")):
            return True
    return False


def ec2_identity(timeout_s: float = 1.0) -> dict[str, object]:
    """instance_type and ami_id from IMDSv2; {} when it does not answer in time."""
    import urllib.request

    try:
        token_request = urllib.request.Request(
            f"{IMDS}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        )
        with urllib.request.urlopen(token_request, timeout=timeout_s) as response:
            token = response.read().decode()
        found: dict[str, object] = {}
        for field, path in (("instance_type", "instance-type"), ("ami_id", "ami-id")):
            request = urllib.request.Request(
                f"{IMDS}/latest/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token}
            )
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                found[field] = response.read().decode()
        return found
    except OSError:
        return {}
