"""File and checksum helpers both stores use: key checks, streaming SHA-256, verified atomic writes."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple, cast

from campaign.errors import StoreError

CHUNK_SIZE = 4 * 1024 * 1024
TEMP_PREFIX = ".campaign-tmp-"
PROBE_PREFIX = ".campaign-probe-"
# Names the store itself creates for a moment; listings never show them.
LOCK_PREFIX = ".campaign-lock-"
INTERNAL_PREFIXES = (TEMP_PREFIX, PROBE_PREFIX, LOCK_PREFIX)


class Digest(NamedTuple):
    """Size and lowercase hex SHA-256 of some bytes."""

    size: int
    sha256: str


def check_key(key: str, *, store_url: str) -> str:
    """Return key unchanged if it is a relative '/'-path inside the store; else raise StoreError."""
    parts = key.split("/")
    if key.startswith("/") or "\0" in key or any(part in ("", ".", "..") for part in parts):
        raise StoreError(
            f"refusing key {key!r} for the store {store_url}: a key must be a relative path "
            "inside the store, without '..', '.' or empty parts. Whatever produced this key "
            "has a bug (a declared output path that leaves the run folder?)."
        )
    return key


def check_prefix(prefix: str, *, store_url: str) -> str:
    """Return prefix unchanged if it is '' or a key, optionally ending in '/'; else StoreError."""
    if prefix:
        check_key(prefix.removesuffix("/"), store_url=store_url)
    return prefix


def hash_chunks(chunks: Iterable[bytes | memoryview]) -> Digest:
    """Size and SHA-256 of a stream of chunks."""
    sha, size = hashlib.sha256(), 0
    for chunk in chunks:
        sha.update(chunk)
        size += len(chunk)
    return Digest(size, sha.hexdigest())


def read_chunks(file: BinaryIO) -> Iterator[memoryview]:
    """The file's bytes as views into one reused buffer: use each before asking for the next."""
    # Sized to the file when it is smaller: zeroing 4 MiB to read a 300-byte journal segment cost
    # more than the rest of its write. One byte more than the size lets the first read reach the end.
    buffer = bytearray(min(CHUNK_SIZE, os.fstat(file.fileno()).st_size + 1))
    view = memoryview(buffer)
    while count := cast(io.BufferedIOBase, file).readinto(buffer):  # every caller opens it with open(…, 'rb')
        yield view[:count]


def sha256_of(path: Path) -> str:
    """The lowercase hex SHA-256 of a local file's bytes (what prebuilt and cache fetches check)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def write_atomically(
    dest: Path,
    chunks: Iterable[bytes | memoryview],
    *,
    expected: Digest | None = None,
    source: str = "",
    durable: bool = True,
) -> Digest:
    """Write chunks to dest through a verified temp file; dest is untouched if anything fails.

    expected, when given, is what the chunks must add up to (the checksum the source records).
    durable=False skips the fsyncs, for bytes the caller can write again from a durable copy of its
    own: a power loss may then lose or empty dest (never tear it into something that verifies).
    """
    temp = dest.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    try:
        written = _write_and_sync(temp, chunks, dest=dest, durable=durable)
        _compare(temp, written, dest=dest)
        refuse_mismatch(written, expected, doing=f"copying {source} to {dest} (left as it was)")
        with _write_errors(dest):
            creating = not dest.exists()
            os.replace(temp, dest)
            if durable and creating:
                # A new name must survive a power loss. Over an existing name the old bytes would
                # survive instead, which the recorded sha256 tells apart on resume.
                fsync_folder(dest.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return written


def refuse_mismatch(received: Digest, recorded: Digest | None, *, doing: str) -> None:
    """StoreError if bytes received from a store do not add up to what it records for them."""
    if recorded is not None and received != recorded:
        raise StoreError(
            f"{doing}: got {received.size} bytes with sha256 {received.sha256}, but the store records "
            f"{recorded.size} bytes with sha256 {recorded.sha256}. Run again; if it repeats, the stored "
            "object is damaged."
        )


def _write_and_sync(temp: Path, chunks: Iterable[bytes | memoryview], *, dest: Path, durable: bool) -> Digest:
    """Copy chunks into temp while hashing them; errors from the chunks' source pass through as they are."""
    sha, size = hashlib.sha256(), 0
    with _write_errors(dest):
        # O_EXCL: never write through a name someone else created; 0o666 lets the umask decide.
        out = open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
    with out:  # buffered: its write() never stops short
        for chunk in chunks:
            sha.update(chunk)
            with _write_errors(dest):
                out.write(chunk)
            size += len(chunk)
        with _write_errors(dest):
            out.flush()
            if durable:  # the bytes must be on disk before the rename makes them the stored object
                os.fsync(out.fileno())
    return Digest(size, sha.hexdigest())


@contextmanager
def _write_errors(dest: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise StoreError(
            f"cannot write {dest}: {error.strerror or error}. Free some space or fix the "
            "folder's permissions, or pass another --store."
        ) from error


def _compare(temp: Path, written: Digest, *, dest: Path) -> None:
    with _write_errors(dest), temp.open("rb") as file:
        read_back = hash_chunks(read_chunks(file))
    if read_back != written:
        raise StoreError(
            f"wrote {dest} but reading it back gave {read_back.size} bytes with sha256 "
            f"{read_back.sha256} instead of {written.size} bytes with sha256 {written.sha256}. "
            "The disk or filesystem did not keep what it was given: check free space and the "
            "kernel log (dmesg), then run again."
        )


def fsync_folder(folder: Path) -> None:
    """Make a rename in folder durable; filesystems that cannot fsync a folder are let be."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def make_folder(folder: Path, *, purpose: str) -> None:
    """Create folder and its parents, or raise StoreError saying which and what to do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"cannot create the folder {folder} {purpose}: {error.strerror or error}. "
            "Create it yourself (and make it writable), or pass another --store."
        ) from error


def refuse_if_changed(path: Path, before: os.stat_result, after: os.stat_result, *, dest: Path | str) -> None:
    """StoreError if the file at path was written to between the two stats (size or mtime moved)."""
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise StoreError(
            f"{path} changed while it was being stored as {dest} ({before.st_size} bytes, then "
            f"{after.st_size}). Something is still writing it: wait for it to finish, then run again."
        )
