"""Fixtures for the store tests: each store kind, changing objects behind its back, a flaky S3."""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from campaign.store import Store
from campaign.store.local import LocalStore
from campaign.store.s3 import S3Settings, S3Store

MiB = 1024 * 1024
# Multipart from 6 MiB in 5 MiB parts (S3's minimum), so a 12 MiB file goes up in 3 parts.
SMALL_PARTS = S3Settings(multipart_threshold=6 * MiB, part_size=5 * MiB)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Each store kind, empty: a folder under tmp_path, or s3://<fresh bucket>/prefix on moto.

    The S3 store uses SMALL_PARTS so that a 12 MiB file exercises the multipart path.
    """
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Store.from_url(f"s3://{bucket}/prefix", settings=SMALL_PARTS)


@pytest.fixture
def overwrite_behind_back(request: pytest.FixtureRequest) -> Callable[[Store, str, bytes], None]:
    """overwrite(store, key, data): replace an object's bytes without going through the store.

    Local: the file is written directly. S3: a raw boto3 put_object with boto3's defaults (so the
    object no longer carries the store's SHA-256 record).
    """

    def overwrite(store: Store, key: str, data: bytes) -> None:
        if isinstance(store, LocalStore):
            Path(store.where(key)).write_bytes(data)
            return
        client = request.getfixturevalue("s3_client")
        raw_key = store.where(key).removeprefix(f"s3://{store.bucket}/")
        client.put_object(Bucket=store.bucket, Key=raw_key, Body=data)

    return overwrite


@pytest.fixture
def appending_to() -> Callable[[Path], AbstractContextManager[None]]:
    """`with appending_to(path):` a thread keeps appending lines to path, as a still-running stage would."""
    return keep_appending


@contextmanager
def keep_appending(path: Path) -> Iterator[None]:
    stop, appended = threading.Event(), threading.Event()

    def append_until_stopped() -> None:
        with path.open("ab") as log:
            while not stop.is_set():
                log.write(b"another line\n")
                log.flush()
                appended.set()
                time.sleep(0.0005)

    writer = threading.Thread(target=append_until_stopped)
    writer.start()
    try:
        appended.wait(timeout=5)
        yield
    finally:
        stop.set()
        writer.join()


@pytest.fixture
def flaky_proxy(s3_server: str) -> Iterator[Callable[..., FlakyProxy]]:
    """start(**faults) -> a FlakyProxy (see there) in front of moto, stopped after the test."""
    proxies: list[FlakyProxy] = []

    def start(**faults: dict[str, int]) -> FlakyProxy:
        proxies.append(FlakyProxy(s3_server, **faults))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.stop()


class FlakyProxy:
    """An HTTP proxy on 127.0.0.1 to the moto server that misbehaves on purpose, then behaves.

    It also does what moto does not and real S3 does: a PUT whose body does not match its
    x-amz-checksum-sha256 header is refused with 400 BadDigest.

    Each fault maps an HTTP method to how many of its first requests suffer it:
      fail={"PUT": 2}       answered 503 SlowDown (S3's throttling answer), not forwarded
      truncate={"GET": 1}   the body breaks off half-way (the connection is closed)
      corrupt={"GET": 1}    one byte of the body is flipped (of a PUT: before the checksum check)
      misreport={"HEAD": 1} the x-amz-checksum-sha256 header is replaced by another digest
    `requests` counts the requests that arrived, by method; `endpoint` is the proxy's URL.
    """

    KINDS = ("fail", "truncate", "corrupt", "misreport")

    def __init__(self, upstream: str, **faults: dict[str, int]):
        assert set(faults) <= set(self.KINDS), f"unknown fault in {sorted(faults)}"
        self._upstream = urlsplit(upstream)
        self._faults = {kind: Counter(faults.get(kind, {})) for kind in self.KINDS}
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.down = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def go_down(self) -> None:
        """From now on every request, on new or kept-alive connections, gets its connection dropped
        unanswered: the store is gone (stop() alone leaves kept-alive connections served)."""
        self.down = True

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as boto3 expects

            def handle_request(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_request

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def _take_fault(self, kind: str, method: str) -> bool:
        with self._lock:
            if self._faults[kind][method] > 0:
                self._faults[kind][method] -= 1
                return True
            return False

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command
        if self.down:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        with self._lock:
            self.requests[method] += 1
        if self._take_fault("fail", method):
            self._send(handler, 503, [("Content-Type", "application/xml")], SLOW_DOWN)
            return
        corrupt = self._take_fault("corrupt", method)
        if corrupt and method == "PUT":
            body = flip_first_byte(body)
        if not matches_its_checksum(handler, body):
            self._send(handler, 400, [("Content-Type", "application/xml")], BAD_DIGEST)
            return
        status, headers, payload = self._forward(handler, body)
        if corrupt and method != "PUT":
            payload = flip_first_byte(payload)
        if self._take_fault("misreport", method):
            headers = [(k, OTHER_SHA256 if k.lower() == "x-amz-checksum-sha256" else v) for k, v in headers]
        cut_at = len(payload) // 2 if self._take_fault("truncate", method) else None
        self._send(handler, status, headers, payload, cut_at=cut_at)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list, bytes]:
        connection = http.client.HTTPConnection(self._upstream.hostname, self._upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("expect", "connection")}
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, headers: list, payload: bytes, cut_at: int | None = None
    ) -> None:
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                handler.send_header(name, value)
        length = dict((k.lower(), v) for k, v in headers).get("content-length", str(len(payload)))
        handler.send_header("Content-Length", length)  # HEAD: the object's size, with no body
        handler.end_headers()
        handler.wfile.write(payload if cut_at is None else payload[:cut_at])
        handler.wfile.flush()
        handler.close_connection = cut_at is not None


def flip_first_byte(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:] if data else data


def matches_its_checksum(handler: BaseHTTPRequestHandler, body: bytes) -> bool:
    claimed = handler.headers.get("x-amz-checksum-sha256")
    return claimed is None or claimed == base64.b64encode(hashlib.sha256(body).digest()).decode()


BAD_DIGEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>'
    b"<Message>The SHA256 you specified did not match the calculated checksum.</Message></Error>"
)
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
OTHER_SHA256 = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
