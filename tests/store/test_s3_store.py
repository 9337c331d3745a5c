"""The S3 store against moto's server: checksums on the wire, errors that name the object, bounded
waits when the server is gone, retries, and a layout plain S3 tools can read."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto.server import ThreadedMotoServer

from campaign.errors import InputError, NotInStore, StoreError
from campaign.store import Artifact, open_store
from campaign.store.s3 import S3Settings, S3Store

MiB = 1024 * 1024
SMALL_PARTS = S3Settings(multipart_threshold=6 * MiB, part_size=5 * MiB)


def artifact_of(key: str, data: bytes) -> Artifact:
    return Artifact(key, len(data), hashlib.sha256(data).hexdigest())


def composite_sha256(data: bytes, part_size: int) -> str:
    parts = [hashlib.sha256(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)]
    return base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode() + f"-{len(parts)}"


@pytest.fixture
def small_parts_store(s3_bucket: str) -> S3Store:
    return S3Store.from_url(f"s3://{s3_bucket}/prefix", settings=SMALL_PARTS)


@pytest.fixture
def twelve_mib_file(tmp_path: Path) -> Path:
    path = tmp_path / "lineitem.parquet"
    path.write_bytes(os.urandom(12 * MiB + 777))
    return path


def test_no_test_can_reach_real_aws(s3_server: str) -> None:
    session = boto3.session.Session()

    assert boto3.client("s3").meta.endpoint_url == s3_server
    assert s3_server.startswith("http://127.0.0.1:")
    assert session.get_credentials().access_key == "testing"
    assert Path(os.environ["AWS_CONFIG_FILE"]).read_text() == ""
    assert Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"]).read_text() == ""
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"


# -- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("s3://bkt", "s3://bkt/runs/r1"),
        ("s3://bkt/", "s3://bkt/runs/r1"),
        ("s3://bkt/a/b/", "s3://bkt/a/b/runs/r1"),
    ],
)
def test_from_url_joins_keys_under_the_prefix(url: str, where: str) -> None:
    assert open_store(url).where("runs/r1") == where


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://bkt/../x"])
def test_from_url_refuses_a_malformed_address_as_bad_input(url: str) -> None:
    with pytest.raises(InputError):
        S3Store.from_url(url)


# -- checksums ------------------------------------------------------------------------------------


def test_a_single_put_carries_its_sha256(s3_store: S3Store, s3_client, s3_bucket: str) -> None:
    data = b"results\n" * 1000

    s3_store.put_bytes(data, "runs/r1/results.jsonl")

    head = s3_client.head_object(Bucket=s3_bucket, Key="prefix/runs/r1/results.jsonl", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_multipart_put_records_the_composite_and_the_full_digest(
    small_parts_store: S3Store, s3_client, s3_bucket: str, twelve_mib_file: Path
) -> None:
    data = twelve_mib_file.read_bytes()

    artifact = small_parts_store.put_file(twelve_mib_file, "cache/lineitem.parquet")

    got = s3_client.get_object(Bucket=s3_bucket, Key="prefix/cache/lineitem.parquet", ChecksumMode="ENABLED")
    got["Body"].close()
    assert got["ChecksumSHA256"] == composite_sha256(data, 5 * MiB)
    assert got["ChecksumSHA256"].endswith("-3")
    assert got["Metadata"] == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha256-composite": got["ChecksumSHA256"],
    }
    assert small_parts_store.stat("cache/lineitem.parquet") == artifact == artifact_of(artifact.key, data)


def test_a_changed_object_with_a_sha256_checksum_is_caught_by_shallow_verify(
    s3_store: S3Store, s3_client, s3_bucket: str
) -> None:
    artifact = s3_store.put_bytes(b"original", "runs/r1/manifest.json")
    s3_client.put_object(
        Bucket=s3_bucket, Key="prefix/runs/r1/manifest.json", Body=b"tampered", ChecksumAlgorithm="SHA256"
    )

    assert s3_store.stat(artifact.key) == artifact_of(artifact.key, b"tampered")
    assert "has sha256" in s3_store.verify(artifact)


def test_copied_metadata_is_not_trusted_once_the_composite_changed(
    small_parts_store: S3Store, s3_client, s3_bucket: str, twelve_mib_file: Path, tmp_path: Path
) -> None:
    artifact = small_parts_store.put_file(twelve_mib_file, "cache/lineitem.parquet")
    metadata = s3_client.head_object(Bucket=s3_bucket, Key="prefix/cache/lineitem.parquet")["Metadata"]
    other = tmp_path / "other.parquet"
    other.write_bytes(os.urandom(12 * MiB + 777))
    s3_client.upload_file(  # replaced behind the store's back, its sha256 metadata copied over
        str(other),
        s3_bucket,
        "prefix/cache/lineitem.parquet",
        ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": metadata},
        Config=TransferConfig(multipart_threshold=6 * MiB, multipart_chunksize=5 * MiB),
    )

    assert small_parts_store.stat(artifact.key) == artifact_of(artifact.key, other.read_bytes())
    assert "has sha256" in small_parts_store.verify(artifact)


def test_bytes_that_do_not_match_the_record_are_refused_and_the_destination_kept(
    s3_store: S3Store, s3_client, s3_bucket: str, tmp_path: Path
) -> None:
    # Real S3 would refuse this put; moto keeps the wrong checksum, which stands in for bit rot.
    wrong = base64.b64encode(hashlib.sha256(b"what was meant").digest()).decode()
    s3_client.put_object(
        Bucket=s3_bucket,
        Key="prefix/runs/r1/run.json",
        Body=b"what is stored",
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=wrong,
    )
    destination = tmp_path / "run.json"
    destination.write_bytes(b"previous")

    with pytest.raises(StoreError, match=f"cannot download {s3_store.where('runs/r1/run.json')}: the bytes"):
        s3_store.download("runs/r1/run.json", destination)
    with pytest.raises(StoreError, match=f"cannot read {s3_store.where('runs/r1/run.json')}: the bytes"):
        s3_store.get_bytes("runs/r1/run.json")
    assert destination.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["run.json"]


@pytest.mark.parametrize("size", [1000, 12 * MiB + 777], ids=["single-put", "multipart"])
def test_a_body_damaged_on_the_way_up_is_refused_by_its_checksum(
    s3_bucket: str, flaky_proxy, monkeypatch, tmp_path: Path, size: int
) -> None:
    proxy = flaky_proxy(corrupt={"PUT": 1})  # the proxy checks checksums as S3 does; moto does not
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    store = S3Store.from_url(f"s3://{s3_bucket}/prefix", settings=SMALL_PARTS)
    (tmp_path / "data.bin").write_bytes(os.urandom(size))

    with pytest.raises(StoreError) as raised:
        store.put_file(tmp_path / "data.bin", "runs/r1/outputs/data.bin")

    assert str(raised.value) == (
        f"cannot upload {store.where('runs/r1/outputs/data.bin')}: S3 refused the body: it does not match "
        "the SHA-256 computed before sending (BadDigest). The file changed during the upload or the data was "
        "damaged on the way: run again."
    )
    assert store.stat("runs/r1/outputs/data.bin") is None


def test_a_file_still_being_written_is_refused_and_not_left_behind(
    small_parts_store: S3Store, tmp_path: Path, appending_to
) -> None:
    source = tmp_path / "growing.log"
    source.write_bytes(os.urandom(8 * MiB))
    growing = pytest.raises(StoreError, match=f"{source} changed while it was being stored as ")
    with appending_to(source), growing:
        small_parts_store.put_file(source, "runs/r1/logs/growing.log")

    assert small_parts_store.stat("runs/r1/logs/growing.log") is None


# -- errors that name the object ------------------------------------------------------------------


def test_upload_into_a_missing_bucket_names_the_object(s3_server: str, twelve_mib_file: Path) -> None:
    store = S3Store.from_url("s3://missing-bucket/prefix", settings=SMALL_PARTS)
    expected = (
        "cannot upload s3://missing-bucket/prefix/{}: bucket missing-bucket does not exist. "
        "Create it or pass another --store."
    )

    with pytest.raises(StoreError) as single:
        store.put_bytes(b"{}", "runs/r1/run.json")
    with pytest.raises(StoreError) as multipart:
        store.put_file(twelve_mib_file, "cache/lineitem.parquet")
    with pytest.raises(StoreError, match=r"^cannot upload s3://missing-bucket/prefix/.campaign-probe-"):
        store.probe()

    assert str(single.value) == expected.format("runs/r1/run.json")
    assert str(multipart.value) == expected.format("cache/lineitem.parquet")
    assert single.value.__cause__ is not None


def test_reading_from_a_missing_bucket_is_not_mistaken_for_a_missing_key(s3_server: str) -> None:
    store = open_store("s3://missing-bucket/prefix")

    with pytest.raises(StoreError, match=r"^cannot read s3://missing-bucket/prefix/run.json: bucket") as raised:
        store.get_bytes("run.json")
    assert not isinstance(raised.value, NotInStore)


def test_a_server_that_is_gone_fails_within_a_bounded_time(s3_server: str, monkeypatch) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint, bucket = f"http://{host}:{port}", f"test-{uuid.uuid4().hex[:20]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/prefix")  # default settings: the bound under test
    store.put_bytes(b"before", "runs/r1/journal.jsonl")
    server.stop()

    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        store.put_bytes(b"after", "runs/r1/journal.jsonl")

    assert time.monotonic() - started < 20
    assert str(raised.value).startswith(
        f"cannot upload s3://{bucket}/prefix/runs/r1/journal.jsonl: the S3 endpoint {endpoint} "
        "did not answer after 5 attempts"
    )


def test_a_server_that_never_answers_fails_after_its_timeouts(monkeypatch) -> None:
    with SilentServer() as silent:
        monkeypatch.setenv("AWS_ENDPOINT_URL", silent.endpoint)
        store = S3Store.from_url("s3://bkt/prefix", settings=S3Settings(max_attempts=2, read_timeout=1))

        started = time.monotonic()
        with pytest.raises(StoreError, match="did not answer after 2 attempts") as raised:
            store.get_bytes("runs/r1/run.json")
        elapsed = time.monotonic() - started

    assert silent.connections == 2
    assert elapsed < 5  # two read timeouts of one second, plus a short backoff
    assert str(raised.value).startswith(
        f"cannot read s3://bkt/prefix/runs/r1/run.json: the S3 endpoint {silent.endpoint}"
    )


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; counts the connections."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.endpoint = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self._held:
            connection.close()
        self._socket.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self._held.append(connection)
            self.connections += 1


# -- retries --------------------------------------------------------------------------------------


def test_throttling_is_retried(flaky_proxy, s3_bucket: str, monkeypatch) -> None:
    proxy = flaky_proxy(fail={"PUT": 2})
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    store = open_store(f"s3://{s3_bucket}/prefix")

    artifact = store.put_bytes(b"journal line\n", "runs/r1/journal.jsonl")

    assert proxy.requests["PUT"] == 3  # two 503 SlowDown, then through
    assert artifact == artifact_of("runs/r1/journal.jsonl", b"journal line\n")


def test_a_body_that_breaks_off_is_fetched_again(s3_store: S3Store, flaky_proxy, monkeypatch) -> None:
    data = os.urandom(200_000)
    s3_store.put_bytes(data, "runs/r1/results.jsonl")
    proxy = flaky_proxy(truncate={"GET": 1})
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    store = open_store(s3_store.url)

    assert store.get_bytes("runs/r1/results.jsonl") == data

    assert proxy.requests["GET"] == 2


def test_an_upload_that_s3_reports_differently_is_refused(s3_store: S3Store, flaky_proxy, monkeypatch) -> None:
    proxy = flaky_proxy(misreport={"HEAD": 1})
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    store = open_store(s3_store.url)
    sent = base64.b64encode(hashlib.sha256(b"journal").digest()).decode()

    with pytest.raises(StoreError) as raised:
        store.put_bytes(b"journal", "runs/r1/journal.jsonl")

    assert str(raised.value).startswith(
        f"uploaded {store.where('runs/r1/journal.jsonl')} but S3 reports 7 bytes with SHA-256 checksum "
    )
    assert f"where 7 bytes with {sent} were sent. The object was deleted" in str(raised.value)
    assert store.stat("runs/r1/journal.jsonl") is None


def test_a_multipart_object_damaged_on_the_way_down_is_refused(
    small_parts_store: S3Store, flaky_proxy, monkeypatch, twelve_mib_file: Path, tmp_path: Path
) -> None:
    # botocore cannot check a composite checksum while reading; the store checks the full sha256.
    small_parts_store.put_file(twelve_mib_file, "cache/lineitem.parquet")
    proxy = flaky_proxy(corrupt={"GET": 2})
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    store = S3Store.from_url(small_parts_store.url, settings=SMALL_PARTS)
    destination = tmp_path / "down" / "lineitem.parquet"

    where = store.where("cache/lineitem.parquet")
    with pytest.raises(StoreError, match=f"^copying {where} to {destination} \\(left as it was\\): got "):
        store.download("cache/lineitem.parquet", destination)
    with pytest.raises(StoreError, match=f"^reading {where}: got "):
        store.get_bytes("cache/lineitem.parquet")
    assert os.listdir(tmp_path / "down") == []  # neither the file nor a temp file


# -- listing and plain-S3 layout ------------------------------------------------------------------


def test_listing_follows_every_page(s3_bucket: str) -> None:
    store = S3Store.from_url(f"s3://{s3_bucket}/prefix", settings=S3Settings(list_page_size=2))
    for run in ["r1", "r2", "r3", "r4", "r5"]:
        store.put_bytes(b"{}", f"runs/{run}/run.json")

    assert store.list_keys("runs/") == [f"runs/r{i}/run.json" for i in range(1, 6)]
    assert store.list_children("runs/") == ["r1", "r2", "r3", "r4", "r5"]


def test_the_aws_cli_reads_what_the_store_wrote(
    small_parts_store: S3Store, s3_server: str, twelve_mib_file: Path, tmp_path: Path
) -> None:
    small_parts_store.put_bytes(b'{"run": "r1"}\n', "runs/r1/run.json")
    small_parts_store.put_file(twelve_mib_file, "runs/r1/outputs/lineitem.parquet")
    aws = [sys.executable, "-m", "awscli", "--endpoint-url", s3_server, "s3"]

    one = subprocess.run(
        [*aws, "cp", small_parts_store.where("runs/r1/run.json"), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    subprocess.run(
        [*aws, "cp", "--recursive", small_parts_store.where("runs/r1/"), str(tmp_path / "copy")],
        capture_output=True,
        check=True,
        timeout=60,
    )

    assert one.stdout == b'{"run": "r1"}\n'
    assert (tmp_path / "copy/run.json").read_bytes() == b'{"run": "r1"}\n'
    assert (tmp_path / "copy/outputs/lineitem.parquet").read_bytes() == twelve_mib_file.read_bytes()
