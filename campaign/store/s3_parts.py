"""Checksums of the S3 store: multipart uploads (every byte hashed once here, every part checked by
S3), and what S3 records for an object.

One pass over the file computes the full-object SHA-256 (it goes into the object's metadata, which
CreateMultipartUpload must be given before any part) and each part's SHA-256, the two in parallel.
The parts then go up concurrently, each read again and sent with its digest from that pass, so S3
refuses a part whose bytes differ (BadDigest): what is stored is exactly what was hashed, and
botocore hashes nothing a second time. The composite S3 reports afterwards (sha256 of the parts'
digests, suffixed '-N') is computed here from the same digests, for the read-back comparison.
"""

from __future__ import annotations

import base64
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from campaign.store.files import Digest

# The object's metadata records the full-object sha256 next to the composite checksum it belongs to.
SHA256_METADATA = "sha256"
COMPOSITE_METADATA = "sha256-composite"


@dataclass(frozen=True)
class HashedParts:
    """A file's size and SHA-256, and the SHA-256 of each of its parts of part_size bytes."""

    digest: Digest
    part_size: int
    part_digests: tuple[bytes, ...]

    @property
    def composite(self) -> str:
        """The checksum S3 reports for the multipart object: base64 sha256 of the part digests, '-N'."""
        return f"{base64_text(hashlib.sha256(b''.join(self.part_digests)).digest())}-{len(self.part_digests)}"


def hash_parts(fd: int, size: int, part_size: int) -> HashedParts:
    """Hash the first size bytes of fd whole and per part in one read; the two digests run in parallel."""
    whole, part_digests = hashlib.sha256(), []
    with ThreadPoolExecutor(1, thread_name_prefix="part-hash") as helper:  # hashlib releases the GIL
        for offset in range(0, size, part_size):
            data = read_range(fd, offset, min(part_size, size - offset))
            part = helper.submit(_sha256, data)
            whole.update(data)
            part_digests.append(part.result())
    return HashedParts(Digest(size, whole.hexdigest()), part_size, tuple(part_digests))


def upload_parts(
    client: Any, bucket: str, key: str, fd: int, hashed: HashedParts, *, metadata: dict[str, str], concurrency: int
) -> None:
    """Create the multipart upload, send the parts (max concurrency at once), complete it.

    Anything that fails (a part refused, Ctrl-C) aborts the upload, so no part lingers in the bucket.
    """
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", Metadata=metadata)[
        "UploadId"
    ]
    try:
        parts = _send_parts(client, bucket, key, upload_id, fd, hashed, concurrency)
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException as failure:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception as also:  # the failure that got us here is the one to report
            failure.add_note(f"Aborting the multipart upload {upload_id} failed too: {also}")
        raise


def _send_parts(
    client: Any, bucket: str, key: str, upload_id: str, fd: int, hashed: HashedParts, concurrency: int
) -> list[dict]:
    def send(index: int) -> dict:
        offset = index * hashed.part_size
        length = min(hashed.part_size, hashed.digest.size - offset)
        checksum = base64_text(hashed.part_digests[index])
        response = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=index + 1,
            Body=read_range(fd, offset, length),
            ChecksumSHA256=checksum,
        )
        return {"PartNumber": index + 1, "ETag": response["ETag"], "ChecksumSHA256": checksum}

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="part-upload")
    try:
        futures = [pool.submit(send, index) for index in range(len(hashed.part_digests))]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on a failure, parts not yet started never start


def read_range(fd: int, offset: int, length: int) -> bytes:
    """length bytes of fd from offset; OSError if the file ends sooner (it shrank while being stored)."""
    chunks, read = [], 0
    while read < length:
        chunk = os.pread(fd, length - read, offset + read)
        if not chunk:
            raise OSError(f"the file ended at byte {offset + read}, before the {offset + length} it had")
        chunks.append(chunk)
        read += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def recorded_sha256(response: dict) -> str | None:
    """The full-object sha256 S3 vouches for, or None when the object carries no trusted record."""
    checksum = response.get("ChecksumSHA256")
    if not checksum:
        return None
    if not _is_multipart(response):
        return base64.b64decode(checksum).hex()
    metadata = response.get("Metadata", {})
    if same_checksum(checksum, metadata.get(COMPOSITE_METADATA, "")):
        return metadata.get(SHA256_METADATA)
    return None


def recorded_digest(response: dict) -> Digest | None:
    sha256 = recorded_sha256(response)
    return None if sha256 is None else Digest(response["ContentLength"], sha256)


def _is_multipart(response: dict) -> bool:
    # HEAD may omit the '-N' suffix on a composite checksum (moto does); the ETag still has it.
    checksum, etag = response.get("ChecksumSHA256", ""), response.get("ETag", "").strip('"')
    return "-" in checksum or "-" in etag or response.get("ChecksumType") == "COMPOSITE"


def same_checksum(reported: str, expected: str) -> bool:
    """Compare checksums, tolerating a '-N' part-count suffix that only one side shows."""
    reported_value, _, reported_parts = reported.partition("-")
    expected_value, _, expected_parts = expected.partition("-")
    parts_agree = not reported_parts or not expected_parts or reported_parts == expected_parts
    return bool(expected_value) and reported_value == expected_value and parts_agree


def base64_text(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
