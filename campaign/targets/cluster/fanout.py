"""An `on: all` stage on a cluster: `python -m campaign.targets.cluster.fanout STATE_DIR NAME COMMAND`.

The agent runs this in place of the stage's command when the run is on a cluster (CAMPAIGN_CLUSTER_FANOUT):
the command runs on every node in parallel, in the node's checkout with its environment (CAMPAIGN_NODE_*) and
the stage's own CAMPAIGN_* variables; each node's output goes to a log of its own beside the stage's log
(CAMPAIGN_STAGE_LOG.node<N>.log) and, prefixed with the node, to the stage's log. Exits 1 when any node failed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from campaign.targets.cluster.local import exec_on
from campaign.targets.cluster.state import read_record


def fan_out(state_dir: Path, name: str, command: str) -> int:
    record = read_record(state_dir, name)
    stage_env = {k: v for k, v in os.environ.items() if k.startswith("CAMPAIGN_") and not k.startswith("CAMPAIGN_NODE")}
    exports = "".join(f"export {k}={_quote(v)}; " for k, v in sorted(stage_env.items()))
    results = exec_on(record, list(record.nodes), exports + command, timeout_s=None)
    log_base = os.environ.get("CAMPAIGN_STAGE_LOG")
    for result in results:
        if log_base:
            Path(f"{log_base}.node{result.node.index}.log").write_text(result.output)
        print(f"== {result.node.label}: exit {result.returncode}")
        for line in result.output.splitlines():
            print(f"[{result.node.index}] {line}")
    failed = [r.node.index for r in results if r.returncode != 0]
    print(f"on: all — {len(results) - len(failed)} nodes succeeded, {len(failed)} failed {failed or ''}".rstrip())
    return 1 if failed else 0


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(fan_out(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
