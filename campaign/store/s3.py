"""A store in S3 (`s3://bucket/prefix`): every upload carries its SHA-256 and is read back.

Below `multipart_threshold` a file goes up in one PUT whose SHA-256 was computed locally first and
is sent with it (ChecksumSHA256), so S3 refuses a body that does not match. Larger files go up in
parts, each sent with the SHA-256 computed for it in the same pass as the full digest (see
campaign.store.s3_parts; S3 checks every part); the composite checksum S3 then reports (sha256 of
the parts' sha256 digests, suffixed '-N') is computed locally from those digests and compared. The full-object sha256 is stored in the object's metadata
('sha256') next to the composite it belongs to ('sha256-composite'): `stat()` trusts it only while
S3's composite still matches, so an object replaced behind the store's back is not believed.

Endpoint, credentials, profile and region come from boto3's own configuration (AWS_PROFILE,
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, ~/.aws/config, an instance role, ...). botocore's
'standard' retry mode retries throttling, 5xx and connection errors with backoff; the timeouts in
S3Settings bound how long a server that is gone can hold a request.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.response import StreamingBody
from s3transfer.utils import ChunksizeAdjuster

from campaign.errors import CampaignError, Conflict, InputError, NotInStore, StoreError
from campaign.store import files, s3_errors, s3_parts
from campaign.store.base import Artifact, Store

MiB = 1024 * 1024
SHA256_METADATA, COMPOSITE_METADATA = s3_parts.SHA256_METADATA, s3_parts.COMPOSITE_METADATA
NOT_FOUND_CODES = s3_errors.NOT_FOUND_CODES
CONFLICT_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
# A response body that broke off mid-way: botocore does not retry those, so the whole GET is redone.
BODY_RETRYABLE_ERRORS = (ReadTimeoutError, IncompleteReadError, ResponseStreamingError)
T = TypeVar("T")


@dataclass(frozen=True)
class S3Settings:
    """How the S3 store talks to S3.

    A server that is gone or silent holds one request for at most about
    max_attempts x (connect_timeout or 1 s + read_timeout) plus backoff (the 1 s is botocore's
    wait for '100 Continue' on uploads) plus backoff: under 2 minutes with the defaults. Five
    attempts ride out S3's SlowDown throttling, which a long campaign will meet.
    """

    multipart_threshold: int = 64 * MiB
    part_size: int = 16 * MiB  # S3 needs at least 5 MiB; s3transfer raises smaller values
    max_concurrency: int = 8
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 12.0
    list_page_size: int = 1000  # S3's own maximum; smaller only to exercise pagination in tests


class S3Store(Store):
    """Objects under s3://bucket/prefix; keys are joined under the prefix."""

    def __init__(self, bucket: str, prefix: str = "", *, settings: S3Settings | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        files.check_prefix(self.prefix, store_url=self.url)
        self.settings = settings or S3Settings()
        self._client = _make_client(self.settings, store_url=self.url)

    @classmethod
    def from_url(cls, url: str, *, settings: S3Settings | None = None) -> S3Store:
        """Open 's3://bucket' or 's3://bucket/prefix'."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket:
            raise InputError(f"{url!r} is not an S3 store address: write s3://BUCKET or s3://BUCKET/PREFIX.")
        try:
            files.check_prefix(prefix, store_url=url)
        except StoreError as bad_prefix:
            raise InputError(str(bad_prefix)) from None
        return cls(bucket, prefix, settings=settings)

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def put_file(self, path: Path, key: str) -> Artifact:
        files.check_key(key, store_url=self.url)
        with _local_errors(path, self.where(key)):
            file = open(path, "rb")
        with file:
            before = os.fstat(file.fileno())
            large = before.st_size >= self.settings.multipart_threshold
            digest, checksum = (self._upload_parts if large else self._upload_small_file)(file, Path(path), key)
            with self._deleted_on_failure(key):
                files.refuse_if_changed(path, before, os.fstat(file.fileno()), dest=self.where(key))
                self._check_written(key, digest, checksum)
        return Artifact(key, digest.size, digest.sha256)

    def put_bytes(self, data: bytes, key: str, *, durable: bool = True) -> Artifact:  # S3: always durable
        files.check_key(key, store_url=self.url)
        digest = files.hash_chunks([data])
        checksum = self._put_object(data, key, digest)
        with self._deleted_on_failure(key):
            self._check_written(key, digest, checksum)
        return Artifact(key, digest.size, digest.sha256)

    def put_conditional(self, data: bytes, key: str, *, expect: str | None) -> str:
        files.check_key(key, store_url=self.url)
        condition = {"IfMatch": expect} if expect else {"IfNoneMatch": "*"}
        try:
            with self._errors("write conditionally", key):
                response = self._client.put_object(
                    Bucket=self.bucket, Key=self._full(key), Body=data, ChecksumAlgorithm="SHA256", **condition
                )
        except StoreError as error:
            cause = error.__cause__
            conflict = isinstance(cause, ClientError) and s3_errors.error_code(cause) in CONFLICT_CODES
            if conflict or isinstance(error, NotInStore):  # If-Match on a deleted object: 404
                raise Conflict(f"{self.where(key)} changed: expected {expect or 'absent'}.") from cause
            raise
        return response["ETag"]

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        files.check_key(key, store_url=self.url)
        try:
            with self._errors("read", key):
                response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
                return response["Body"].read(), response["ETag"]
        except NotInStore:
            return None

    def delete(self, key: str) -> None:
        files.check_key(key, store_url=self.url)
        self._delete(key)

    def get_bytes(self, key: str) -> bytes:
        def read(chunks: Iterator[bytes], recorded: files.Digest | None) -> bytes:
            data = b"".join(chunks)
            files.refuse_mismatch(files.hash_chunks([data]), recorded, doing=f"reading {self.where(key)}")
            return data

        return self._read(key, "read", read)

    def download(self, key: str, path: Path) -> None:
        path = Path(path)

        def save(chunks: Iterator[bytes], recorded: files.Digest | None) -> None:
            files.make_folder(path.parent, purpose=f"to download {self.where(key)} into")
            # Not fsynced: S3 keeps the durable copy, and the bytes were checked against its record.
            files.write_atomically(path, chunks, expected=recorded, source=self.where(key), durable=False)

        self._read(key, "download", save)

    def stat(self, key: str) -> Artifact | None:
        with self._errors("check", key):
            head = self._head(key)
        if head is None:
            return None
        sha256 = s3_parts.recorded_sha256(head)
        if sha256 is None:  # not written by this store, or replaced since: only the bytes can tell
            return self.content_digest(key)
        return Artifact(key, head["ContentLength"], sha256)

    def content_digest(self, key: str) -> Artifact | None:
        try:
            # No ChecksumMode: deep verification wants the bytes' own digest, not botocore's verdict.
            content = self._read(key, "read", lambda chunks, _: files.hash_chunks(chunks), checksum_mode=None)
        except NotInStore:
            return None
        return Artifact(key, content.size, content.sha256)

    def list_keys(self, prefix: str) -> list[str]:
        objects = (item for page in self._list_pages(prefix) for item in page.get("Contents", []))
        keys = (self._relative(item["Key"]) for item in objects)
        return sorted(key for key in keys if not key.rpartition("/")[2].startswith(files.INTERNAL_PREFIXES))

    def list_children(self, prefix: str) -> list[str]:
        prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        start = len(self._full(prefix))
        names: set[str] = set()
        for page in self._list_pages(prefix, Delimiter="/"):
            names.update(item["Prefix"][start:].rstrip("/") for item in page.get("CommonPrefixes", []))
            names.update(item["Key"][start:] for item in page.get("Contents", []))
        return sorted(name for name in names if name and not name.startswith(files.INTERNAL_PREFIXES))

    def probe(self) -> None:
        key = f"{files.PROBE_PREFIX}{secrets.token_hex(8)}"
        payload = f"campaign store probe {key}\n".encode()
        self.put_bytes(payload, key)
        try:
            read_back = self.get_bytes(key)
        finally:
            self._delete(key)
        if read_back != payload:
            raise StoreError(f"the probe {self.where(key)} read back different bytes than were written.")

    # -- writing ------------------------------------------------------------------------------

    def _upload_small_file(self, file: BinaryIO, path: Path, key: str) -> tuple[files.Digest, str]:
        with _local_errors(path, self.where(key)):
            digest = files.hash_chunks(files.read_chunks(file))
            file.seek(0)
        return digest, self._put_object(file, key, digest)

    def _upload_parts(self, file: BinaryIO, path: Path, key: str) -> tuple[files.Digest, str]:
        size = os.fstat(file.fileno()).st_size
        part_size = ChunksizeAdjuster().adjust_chunksize(self.settings.part_size, size)  # at most 10,000 parts
        with _local_errors(path, self.where(key)):
            hashed = s3_parts.hash_parts(file.fileno(), size, part_size)
        metadata = {SHA256_METADATA: hashed.digest.sha256, COMPOSITE_METADATA: hashed.composite}
        with self._errors("upload", key):
            s3_parts.upload_parts(
                self._client,
                self.bucket,
                self._full(key),
                file.fileno(),
                hashed,
                metadata=metadata,
                concurrency=self.settings.max_concurrency,
            )
        return hashed.digest, hashed.composite

    def _put_object(self, body: bytes | BinaryIO, key: str, digest: files.Digest) -> str:
        checksum = s3_parts.base64_text(bytes.fromhex(digest.sha256))
        with self._errors("upload", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._full(key),
                Body=body,
                Metadata={SHA256_METADATA: digest.sha256},
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,  # S3 refuses a body that does not match
            )
        return checksum

    @contextmanager
    def _deleted_on_failure(self, key: str) -> Iterator[None]:
        """An upload that fails its checks is deleted, so that it cannot pass for a good one later."""
        try:
            yield
        except StoreError as failure:
            try:
                self._delete(key)
            except StoreError as also:
                failure.add_note(f"Deleting it failed too: {also}")
            raise

    def _check_written(self, key: str, digest: files.Digest, checksum: str) -> None:
        with self._errors("check", key):
            head = self._head(key)
        if head is None:
            raise StoreError(f"uploaded {self.where(key)} but S3 does not have it right after. Run again.")
        size, reported = head["ContentLength"], head.get("ChecksumSHA256") or "none"
        if size != digest.size or not s3_parts.same_checksum(reported, checksum):
            raise StoreError(
                f"uploaded {self.where(key)} but S3 reports {size} bytes with SHA-256 checksum "
                f"{reported}, where {digest.size} bytes with {checksum} were sent. The object was deleted: "
                "run again, and if it repeats check what else writes under this prefix."
            )

    def _delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    # -- reading ------------------------------------------------------------------------------

    def _head(self, key: str) -> dict | None:
        files.check_key(key, store_url=self.url)
        try:
            return self._client.head_object(Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED")
        except ClientError as error:
            if s3_errors.error_code(error) in NOT_FOUND_CODES:
                return None
            raise

    def _read(
        self,
        key: str,
        operation: str,
        consume: Callable[[Iterator[bytes], files.Digest | None], T],
        checksum_mode: str | None = "ENABLED",
    ) -> T:
        """GET key and hand its body and recorded digest to consume; a body that breaks off is
        fetched again, up to max_attempts times."""
        files.check_key(key, store_url=self.url)
        params = {"ChecksumMode": checksum_mode} if checksum_mode else {}
        with self._errors(operation, key):
            for attempt in range(1, self.settings.max_attempts + 1):
                response = self._client.get_object(Bucket=self.bucket, Key=self._full(key), **params)
                try:
                    return consume(_body_chunks(response["Body"]), s3_parts.recorded_digest(response))
                except _InterruptedBodyError as interrupted:
                    if attempt == self.settings.max_attempts:
                        raise interrupted.cause from None
        raise AssertionError("max_attempts must be at least 1")

    def _list_pages(self, prefix: str, **params: str) -> Iterator[dict]:
        files.check_prefix(prefix, store_url=self.url)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = {"PageSize": self.settings.list_page_size}
        with self._errors("list", prefix):
            yield from paginator.paginate(
                Bucket=self.bucket, Prefix=self._full(prefix), PaginationConfig=pages, **params
            )

    # -- names and errors ---------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    @contextmanager
    def _errors(self, operation: str, key: str) -> Iterator[None]:
        """Anything that goes wrong becomes a StoreError naming the object (NotInStore if absent)."""
        try:
            yield
        except CampaignError:
            raise
        except Exception as error:
            raise self._explain(error, operation, self.where(key)) from error

    def _explain(self, error: Exception, operation: str, where: str) -> StoreError:
        return s3_errors.explain(
            error,
            f"cannot {operation} {where}",
            where,
            bucket=self.bucket,
            endpoint=self._client.meta.endpoint_url,
            attempts=self.settings.max_attempts,
        )


class _InterruptedBodyError(Exception):
    """A response body broke off mid-way (the cause says how); the whole GET is worth another try."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _body_chunks(body: StreamingBody) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(files.CHUNK_SIZE)
    except BODY_RETRYABLE_ERRORS as error:
        raise _InterruptedBodyError(error) from error


def _make_client(settings: S3Settings, *, store_url: str) -> Any:
    config = Config(
        # total_max_attempts counts the first try; botocore's 'max_attempts' would not.
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, settings.max_concurrency),
        # Every body this store sends carries a SHA-256 checksum header, which is signed and which S3
        # checks against the body; hashing the body again for the signature (what botocore does over
        # plain http, never over https) would only cost a second pass over every byte.
        s3={"payload_signing_enabled": False},
    )
    try:
        return boto3.session.Session().client("s3", config=config)
    except BotoCoreError as error:
        advice = "Check AWS_PROFILE, AWS_ENDPOINT_URL and ~/.aws/config."
        raise StoreError(f"cannot open the store {store_url}: {error}. {advice}") from error


@contextmanager
def _local_errors(path: Path, where: str) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise StoreError(f"cannot read {path} to upload it to {where}: {error.strerror or error}.") from error
