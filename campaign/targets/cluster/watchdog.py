"""The max-lifetime watchdog of a local cluster: `python -m campaign.targets.cluster.watchdog STATE_DIR NAME`.

Started detached by `cluster up`; it re-reads cluster.json (so `cluster extend` moves its deadline), and at the
deadline brings the cluster down, as `shutdown -h +N` does on an instance. It ends when the cluster is gone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from campaign.targets.cluster.lifecycle import down
from campaign.targets.cluster.state import read_record, record_path

POLL_S = 5.0


def watch(state_dir: Path, name: str) -> None:
    while record_path(state_dir, name).exists():
        left = read_record(state_dir, name).expires_at - time.time()
        if left <= 0:
            print(f"watchdog: cluster {name} reached its max lifetime; bringing it down", flush=True)
            down(state_dir, name, lambda line: print(line, flush=True), from_watchdog=True)
            return
        time.sleep(min(POLL_S, left))


if __name__ == "__main__":
    watch(Path(sys.argv[1]), sys.argv[2])
