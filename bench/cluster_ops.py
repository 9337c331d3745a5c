"""How fast a local cluster answers: `campaign cluster status` (target < 1 s), `deploy` of a new commit to 3 nodes
(target: seconds), `exec` on 3 nodes. The services are tiny JSON servers (the harness's cost, not an engine's
start-up: Spark's JVMs add ~20 s to a deploy, see tests/cluster/test_spark_cluster.py).

Runs the real CLI as a user does (a new process each time) and prints medians and their ratio to the target.
Usage: python bench/cluster_ops.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_STATUS_S, TARGET_DEPLOY_S = 1.0, 10.0
SERVICE = """\
import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
        self.wfile.write(json.dumps({"ok": True, "node": int(os.environ["CAMPAIGN_NODE_INDEX"])}).encode())
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""
CAMPAIGN = """\
name: bench-cluster
scale_factors: [1]
cluster: {nodes: 3}
services:
  - name: api
    on: all
    start: python svc.py {{ node.address }} 9321
    ports: [9321]
    health: {http: "http://{{ node.address }}:9321/", expect: "ok == true and node == {{ node.index }}"}
    ready_timeout: 30s
stages:
  - {name: hello, kind: bench, run: echo hello}
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@x", *args], check=True)


def timed(repo: Path, state: Path, *args: str) -> float:
    command, *rest = args
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "campaign.cli", "cluster", command, "--state-dir", str(state), *rest],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as folder:
        repo, state = Path(folder) / "repo", Path(folder) / "state"
        repo.mkdir()
        (repo / "campaign.yaml").write_text(CAMPAIGN)
        (repo / "svc.py").write_text(SERVICE)
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "bench")
        up_s = timed(repo, state, "up")
        try:
            report(repo, state, repeat, up_s)
        finally:
            timed(repo, state, "down")


def report(repo: Path, state: Path, repeat: int, up_s: float) -> None:
    status = statistics.median(timed(repo, state, "status") for _ in range(repeat))
    execs = statistics.median(timed(repo, state, "exec", "--", "true") for _ in range(repeat))
    deploys = []
    for n in range(repeat):
        (repo / "change.txt").write_text(f"{n}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"change {n}")
        deploys.append(timed(repo, state, "deploy"))
    deploy = statistics.median(deploys)
    print(f"cluster up, 3 nodes (tiny services): {up_s:.2f} s")
    print(
        f"cluster status: median {status:.3f} s over {repeat} (target < {TARGET_STATUS_S:.0f} s: "
        f"{status / TARGET_STATUS_S:.2f} of it)"
    )
    print(f"cluster exec on 3 nodes: median {execs:.3f} s")
    print(
        f"cluster deploy of a new commit to 3 nodes, services restarted and healthy: median {deploy:.2f} s "
        f"(target < {TARGET_DEPLOY_S:.0f} s: {deploy / TARGET_DEPLOY_S:.2f} of it)"
    )


if __name__ == "__main__":
    main()
