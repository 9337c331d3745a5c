"""A moto server of its own that enforces IAM: after its first `free_requests` requests (the setup),
every request must be signed by an IAM user's access key and allowed by that user's policies.

moto reads INITIAL_NO_AUTH_ACTION_COUNT once, when it is imported, and counts requests in a class
attribute: the session's in-process server must not be touched, so this one runs in a process of its
own, on 127.0.0.1 like every moto server here.

    with enforcing_moto(free_requests=3) as endpoint:
        ...three setup requests with any credentials (they are not checked)...
        ...then only what a user's policy allows...
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the IAM-enforcing moto server exited {process.returncode}: "
                f"{process.stdout.read().decode(errors='replace')[-2000:]}"
            )
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"the IAM-enforcing moto server did not listen on 127.0.0.1:{port} in {timeout_s}s")


@contextmanager
def enforcing_moto(*, free_requests: int) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(free_requests)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_listening(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def user_with_policy(endpoint: str, name: str, policy: str) -> dict[str, str]:
    """Three setup requests: an IAM user holding `policy` inline, and its access key (as AWS_* variables)."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="instance-role-policy", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
