"""What runs on an AWS cluster node, sent whole through SSM Run Command: `python3 - ACTION PAYLOAD`.

Standard library only and Python 3.9 (AL2023's python3): the node needs nothing installed but git. PAYLOAD is
base64 of JSON. The node's folder is $CAMPAIGN_NODE_ROOT (default /srv/campaign): checkout/ (the commit),
logs/<service>.log, run/<service>.pid. Each action prints one JSON document on its last line.

    checkout {repo, commit}                      clone once, fetch and check out the commit; prints HEAD
    start    {env, instances: [{service, start, env, needs: [[address, port]], ready_timeout_s}]}
             each not running service started in its own session (it outlives the command), in order,
             once the ports it needs accept connections; prints {service: pid}
    check    {env, checks: [{key, service, http, command, timeout_s}]}
             per check: running?, then the GET's status and body (campaign judges them) or the command's exit
    stop     {services}                          SIGTERM the sessions, SIGKILL after 10 s; prints the survivors
    watchdog {minutes}                           `shutdown -c`, then `shutdown -h +minutes` (the node stops)
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("CAMPAIGN_NODE_ROOT") or "/srv/campaign")
CHECKOUT = ROOT / "checkout"


def _pid(service: str) -> int | None:
    """The service's process group when a member of it is alive (not a zombie nobody reaped)."""
    path = ROOT / "run" / f"{service}.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[2]) == pid and fields[0] != "Z":
            return pid
    return None


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def checkout(payload: dict[str, Any]) -> Any:
    ROOT.mkdir(parents=True, exist_ok=True)
    commit = payload["commit"]
    if not (CHECKOUT / ".git").exists():
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", payload["repo"], str(CHECKOUT)], check=True)
    subprocess.run(["git", "-C", str(CHECKOUT), "fetch", "--quiet", "origin", commit], check=True)
    subprocess.run(
        ["git", "-C", str(CHECKOUT), "-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", commit],
        check=True,
    )
    head = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {"head": head.stdout.strip()}


def start(payload: dict[str, Any]) -> Any:
    (ROOT / "logs").mkdir(parents=True, exist_ok=True)
    (ROOT / "run").mkdir(parents=True, exist_ok=True)
    started = {}
    for instance in payload["instances"]:
        service = instance["service"]
        running = _pid(service)
        if running is not None:
            started[service] = running
            continue
        deadline = time.monotonic() + instance["ready_timeout_s"]
        for address, port in instance["needs"]:
            while not _port_open(address, port):
                if time.monotonic() > deadline:
                    return {"error": f"{service}: what it needs does not accept connections on {address}:{port}"}
                time.sleep(0.5)
        env = {**os.environ, **payload["env"], "CAMPAIGN_NODE_DIR": str(ROOT), **instance["env"]}
        with open(ROOT / "logs" / f"{service}.log", "ab") as log:
            process = subprocess.Popen(
                ["bash", "-c", instance["start"]],
                cwd=str(CHECKOUT),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (ROOT / "run" / f"{service}.pid").write_text(str(process.pid))
        started[service] = process.pid
    return started


def _get(url: str, timeout_s: float) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return {"status": response.status, "body": base64.b64encode(response.read()[:65536]).decode()}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "body": ""}
    except (urllib.error.URLError, OSError) as err:
        return {"error": f"GET {url}: {getattr(err, 'reason', err)}"}


def check(payload: dict[str, Any]) -> Any:
    results = []
    for item in payload["checks"]:
        result: dict[str, Any] = {"key": item["key"], "pid": _pid(item["service"])}
        if result["pid"] is None:
            result["error"] = "not running (its process is gone)"
        elif item.get("http"):
            result.update(_get(item["http"], item["timeout_s"]))
        else:
            env = {**os.environ, **payload["env"], "CAMPAIGN_NODE_DIR": str(ROOT)}
            done = subprocess.run(
                ["bash", "-c", item.get("command") or "true"],
                cwd=str(CHECKOUT),
                env=env,
                capture_output=True,
                text=True,
            )
            result.update({"exit": done.returncode, "stderr": done.stderr.strip()[-200:]})
        results.append(result)
    return results


def stop(payload: dict[str, Any]) -> Any:
    groups = {service: _pid(service) for service in payload["services"]}
    for pid in groups.values():
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_pid(s) is not None for s in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    for service in groups:
        pid = _pid(service)
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
    time.sleep(0.2)
    survivors = [s for s in groups if _pid(s) is not None]
    for service in groups:
        if service not in survivors:
            (ROOT / "run" / f"{service}.pid").unlink(missing_ok=True)
    return {"survivors": survivors}


def watchdog(payload: dict[str, Any]) -> Any:
    subprocess.run(["shutdown", "-c"], capture_output=True)
    message = "campaign cluster: max lifetime reached (campaign cluster extend pushes it)"
    armed = subprocess.run(["shutdown", "-h", f"+{payload['minutes']}", message], capture_output=True, text=True)
    return {"exit": armed.returncode, "stderr": armed.stderr.strip()[-200:]}


ACTIONS = {"checkout": checkout, "start": start, "check": check, "stop": stop, "watchdog": watchdog}


if __name__ == "__main__":
    answer = ACTIONS[sys.argv[1]](json.loads(base64.b64decode(sys.argv[2])))
    print(json.dumps(answer))
