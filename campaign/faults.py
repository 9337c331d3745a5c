"""Crash points for the fault-injection tests.

`CAMPAIGN_FAULT=SITE:N` makes this process kill itself with SIGKILL the N-th time it reaches
SITE, exactly as an OOM kill or a reclaimed machine would. Unset (always, outside the tests) it
costs one comparison. Sites: journal.append, journal.torn (half a line written, then death),
journal.mirror, upload, stage.start, stage.end.
"""

from __future__ import annotations

import os
import signal

_SITE, _, _COUNT = (os.environ.get("CAMPAIGN_FAULT") or "").partition(":")
_reached = 0


def crash_point(site: str) -> None:
    global _reached
    if site != _SITE:
        return
    _reached += 1
    if _reached == int(_COUNT or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def armed(site: str) -> bool:
    """True when the next crash_point(site) will kill: lets a caller tear a write first."""
    return site == _SITE and _reached + 1 == int(_COUNT or 1)
