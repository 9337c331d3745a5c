"""Fixtures for cluster tests: real repositories, real `campaign cluster` commands, real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# A tiny service: answers GET / with JSON on its node's own address (argv: ADDRESS PORT).
JSON_SERVICE = """\
import http.server, json, os, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"node": int(os.environ["CAMPAIGN_NODE_INDEX"]), "ok": True,
                           "commit": os.environ["CAMPAIGN_COMMIT"]}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
"""


def cluster_cli(repo: Path, state: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`campaign cluster ARGS --state-dir STATE` from the repository, as a user runs it."""
    command, *rest = args  # --state-dir before the rest: exec's COMMAND takes everything after `--`
    return subprocess.run(
        [sys.executable, "-m", "campaign.cli", "cluster", command, "--state-dir", str(state), *rest],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def status_json(repo: Path, state: Path, name: str) -> tuple[int, dict]:
    result = cluster_cli(repo, state, "status", "--json", "--name", name)
    return result.returncode, json.loads(result.stdout)


def pids_of(state: Path, name: str) -> dict[str, int]:
    record = json.loads((state / "clusters" / name / "cluster.json").read_text())
    return {f"{i['node']}/{i['service']}": i["pid"] for i in record["instances"]}


def down_if_up(repo: Path, state: Path) -> None:
    """Teardown after a failed test: a cluster left up would keep its ports for the next test."""
    for record in state.glob("clusters/*/cluster.json"):
        result = cluster_cli(repo, state, "down", "--name", record.parent.name)
        assert result.returncode == 0, result.stderr
