"""A preflight verdict: one check, whether it passes, and what the user should know."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    check: str
    ok: bool
    summary: str
    details: tuple[str, ...] = ()
    overridden: bool = False  # failed, but the user chose to go on (--allow-dirty)
    warning: bool = False  # passes, but costs something the user should know before paying (shown as WARN)

    @property
    def refuses(self) -> bool:
        return not self.ok and not self.overridden

    def to_dict(self) -> dict:
        return {
            "check": self.check,
            "ok": self.ok,
            "overridden": self.overridden,
            "warning": self.warning,
            "summary": self.summary,
            "details": list(self.details),
        }
