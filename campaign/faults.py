"""Crash points for the fault-injection tests.

`CAMPAIGN_FAULT=SITE:N` makes this process kill itself with SIGKILL the N-th time it reaches
SITE, exactly as an OOM kill or a reclaimed machine would. Unset (always, outside the tests) it
costs one comparison. Sites: journal.append, journal.torn (half a line written, then death),
journal.mirror, journal.merge and journal.compact (the merged segment or compacted journal
written, the segments it covers not yet deleted), upload, sync (an incremental upload),
stage.start, stage.end.
"""

from __future__ import annotations

import os
import signal

_SITE, _, _COUNT = (os.environ.get("CAMPAIGN_FAULT") or "").partition(":")
_reached = 0


def reached(site: str) -> bool:
    """Count a pass through site; True when this pass is the one CAMPAIGN_FAULT names."""
    global _reached
    if site != _SITE:
        return False
    _reached += 1
    return _reached == int(_COUNT or 1)


def crash_point(site: str) -> None:
    if reached(site):
        die()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
