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
