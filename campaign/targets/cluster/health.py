"""Health checks of a service instance: an HTTP GET (status, then the `expect` condition on the JSON body) or
a command (exit 0). Bounded by a timeout each; many checks run in parallel threads, so `status` stays fast."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from campaign.spec.cluster import check_condition, parse_condition
from campaign.system.process import process_alive
from campaign.targets.cluster.state import Instance

# No proxy: a cluster's addresses are private (127.0.1.N here, the VPC's on AWS).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    detail: str


def check_instance(instance: Instance, *, cwd: str, env: dict[str, str], timeout_s: float = 2.0) -> Verdict:
    if instance.pid is None or not process_alive(instance.pid):
        return Verdict(False, "not running (its process is gone)")
    if instance.http:
        return _check_http(instance, timeout_s)
    result = subprocess.run(
        ["bash", "-c", instance.command or "true"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=max(timeout_s, 5.0),
    )
    if result.returncode != 0:
        return Verdict(False, f"health command exited {result.returncode}: {result.stderr.strip()[-200:]}")
    return Verdict(True, "health command exited 0")


def _check_http(instance: Instance, timeout_s: float) -> Verdict:
    url = instance.http or ""
    try:
        with _OPENER.open(url, timeout=timeout_s) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, b""
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return Verdict(False, f"GET {url}: {reason}")
    return judge_http(instance, status, body)


def judge_http(instance: Instance, status: int, body: bytes) -> Verdict:
    """The verdict on an answer to the health GET (fetched here, or on an AWS node through SSM)."""
    url = instance.http or ""
    if status != instance.status:
        return Verdict(False, f"GET {url}: status {status}, expected {instance.status}")
    if not instance.expect:
        return Verdict(True, f"GET {url}: {status}")
    try:
        document = json.loads(body)
    except ValueError:
        return Verdict(False, f"GET {url}: the body is not JSON, so `{instance.expect}` cannot hold")
    failed = check_condition(parse_condition(instance.expect), document)
    if failed:
        return Verdict(False, f"GET {url}: {failed}")
    return Verdict(True, f"GET {url}: {status}, {instance.expect}")


def check_all(
    instances: list[Instance], envs: dict[str, dict[str, str]], cwds: dict[str, str], timeout_s: float = 2.0
) -> dict[str, Verdict]:
    """Every instance's verdict, keyed by Instance.key, checked in parallel."""
    if not instances:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(instances))) as pool:
        futures = {
            i.key: pool.submit(check_instance, i, cwd=cwds[i.key], env=envs[i.key], timeout_s=timeout_s)
            for i in instances
        }
        return {key: future.result() for key, future in futures.items()}


def port_open(address: str, port: int, timeout_s: float = 0.5) -> bool:
    """Something accepts connections on address:port."""
    try:
        with socket.create_connection((address, port), timeout=timeout_s):
            return True
    except OSError:
        return False
