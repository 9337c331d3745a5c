"""Fixtures shared by every test under tests/: a sealed-off AWS environment and a real S3 API.

No test here can reach a real AWS endpoint. `aws_sandbox` (autouse, whole session) removes every
AWS_* variable the session started with, points the AWS config and credentials files at empty
files, sets fake credentials and region us-east-1, disables the EC2 metadata service, and points
AWS_ENDPOINT_URL at a local port that refuses connections. `s3_server` then points AWS_ENDPOINT_URL
at moto's S3 server on 127.0.0.1, so boto3 clients and the aws CLI created in a test talk to it
without being told.

Typical use:

    def test_upload(s3_store):            # an S3Store on a fresh bucket, prefix 'prefix'
        s3_store.put_bytes(b"x", "runs/r1/run.json")

    def test_raw(s3_client, s3_bucket):   # plain boto3 against the same server
        s3_client.put_object(Bucket=s3_bucket, Key="k", Body=b"x")
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from campaign.store import Store, open_store

FAKE_REGION = "us-east-1"
LOCAL_CLUSTER_TESTS = "tests/cluster/"  # nodes on 127.0.1.N with the services' fixed ports


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`make test` runs two pytest-xdist workers. Work goes out a module at a time, so a module's fixtures (a
    Terraform apply, a sweep) are built once; every cluster test goes to the same worker, since two local
    clusters would bind the same addresses and ports. (Not xdist_group markers with --dist loadgroup: xdist
    3.8 marks the group in Node._nodeid, which pytest 9.2 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "local-cluster" if module.startswith(LOCAL_CLUSTER_TESTS) else module

    return ModuleScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def aws_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake AWS credentials and config for the whole session; the real environment is restored after.

    Until a test first requests `s3_server` (it then stays up for the session), AWS_ENDPOINT_URL
    points at 127.0.0.1 on a port bound but never listened on: an S3 call made without a server
    fails fast with 'connection refused' instead of going anywhere.
    """
    aws_home = tmp_path_factory.mktemp("aws-home")
    (aws_home / "config").write_text("")
    (aws_home / "credentials").write_text("")
    with socket.socket() as refusing, pytest.MonkeyPatch.context() as env:
        refusing.bind(("127.0.0.1", 0))  # held, never listened on: connections are refused
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            env.delenv(name)
        env.setenv("AWS_CONFIG_FILE", str(aws_home / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_home / "credentials"))
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", FAKE_REGION)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{refusing.getsockname()[1]}")
        yield


@pytest.fixture(scope="session")
def s3_server(aws_sandbox: None) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a free port) for the session; yields its endpoint URL.

    AWS_ENDPOINT_URL points at it while it runs, so `open_store("s3://...")`, boto3 and the aws
    CLI use it by default. State is shared by all tests: use `s3_bucket` for a bucket of your own.
    """
    from moto.server import (
        ThreadedMotoServer,  # imported here: tests without S3 do not pay for it
    )

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ENDPOINT_URL", endpoint)
            # AWS-managed policies (AmazonSSMManagedInstanceCore, which terraform/ attaches) exist only then.
            env.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_server: str):
    """A plain boto3 S3 client for the moto server: to arrange or tamper behind a store's back."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_server, region_name=FAKE_REGION)


@pytest.fixture
def s3_bucket(s3_client) -> Iterator[str]:
    """A new, empty bucket with a unique name on the moto server; yields its name, deletes it after."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    _empty_bucket(s3_client, name)
    s3_client.delete_bucket(Bucket=name)


@pytest.fixture
def s3_store(s3_bucket: str) -> Store:
    """`open_store(f"s3://{s3_bucket}/prefix")`: the S3 store with default settings on a fresh bucket."""
    return open_store(f"s3://{s3_bucket}/prefix")


def _empty_bucket(client, bucket: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.fixture(scope="session", autouse=True)
def no_page_cache_drops() -> Iterator[None]:
    """Benches in tests record their cold runs as lukewarm: dropping the page cache before each of them
    (root only) costs about 0.5 s per query and engine and slows every other process on the machine.
    tests/tpch/test_tpch_cold.py turns it back on to check the real thing."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CAMPAIGN_DROP_CACHES", "0")
        yield
