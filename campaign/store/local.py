"""A store in a local folder: every write is atomic and read back before it counts.

A write goes to a temp file beside its destination, is hashed while copied (one pass over the
source), fsynced, re-read and compared (size and SHA-256), and only then renamed into place and
the folder fsynced. A failed write therefore never replaces what was there before.

The folder keeps no checksum records: `stat()` hashes the content, so shallow and deep
verification are the same here.

The key checks, the hashing helpers and `write_atomically` are shared with the S3 store (its
downloads use the same atomic write).
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple

from campaign.errors import NotInStore, StoreError
from campaign.store.base import Artifact, Store

CHUNK_SIZE = 4 * 1024 * 1024
TEMP_PREFIX = ".campaign-tmp-"
PROBE_PREFIX = ".campaign-probe-"
# Names the store itself creates for a moment; listings never show them.
INTERNAL_PREFIXES = (TEMP_PREFIX, PROBE_PREFIX)


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
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while count := file.readinto(buffer):
        yield view[:count]


def write_atomically(
    dest: Path, chunks: Iterable[bytes | memoryview], *, expected: Digest | None = None, source: str = ""
) -> Digest:
    """Write chunks to dest through a verified temp file; dest is untouched if anything fails.

    expected, when given, is what the chunks must add up to (the checksum the source records).
    """
    temp = dest.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    try:
        written = _write_and_sync(temp, chunks, dest=dest)
        _compare(temp, written, dest=dest)
        refuse_mismatch(written, expected, doing=f"copying {source} to {dest} (left as it was)")
        with _write_errors(dest):
            os.replace(temp, dest)
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


def _write_and_sync(temp: Path, chunks: Iterable[bytes | memoryview], *, dest: Path) -> Digest:
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


class LocalStore(Store):
    """A folder on this machine; created on the first write."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def where(self, key: str) -> str:
        return str(self.root / key)

    def put_file(self, path: Path, key: str) -> Artifact:
        dest = self._writable_path(key)
        with _read_errors(f"cannot read {path} to store it as {dest}"), open(path, "rb") as source:
            written = write_atomically(dest, _read_unchanged(source, path, dest=dest))
        return Artifact(key, written.size, written.sha256)

    def put_bytes(self, data: bytes, key: str) -> Artifact:
        dest = self._writable_path(key)
        written = write_atomically(dest, [data])
        return Artifact(key, written.size, written.sha256)

    def get_bytes(self, key: str) -> bytes:
        with self._stored(key) as file:
            return file.read()

    def download(self, key: str, path: Path) -> None:
        path = Path(path)
        with self._stored(key) as source:
            make_folder(path.parent, purpose=f"to download {self.where(key)} into")
            write_atomically(path, read_chunks(source))

    def stat(self, key: str) -> Artifact | None:
        return self.content_digest(key)

    def content_digest(self, key: str) -> Artifact | None:
        try:
            with self._stored(key) as file:
                digest = hash_chunks(read_chunks(file))
        except NotInStore:
            return None
        return Artifact(key, digest.size, digest.sha256)

    def list_keys(self, prefix: str) -> list[str]:
        check_prefix(prefix, store_url=self.url)
        start = self.root / prefix.rpartition("/")[0]
        keys = []
        for folder, _, files in os.walk(start, onerror=self._refuse_walk_error):
            relative = Path(folder).relative_to(self.root).as_posix()
            base = "" if relative == "." else f"{relative}/"
            keys += [base + name for name in files if not name.startswith(INTERNAL_PREFIXES)]
        return sorted(key for key in keys if key.startswith(prefix))

    def list_children(self, prefix: str) -> list[str]:
        check_prefix(prefix, store_url=self.url)
        folder = self.root / prefix
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            names = []
        except OSError as error:
            raise self._listing_error(error) from error
        return sorted(name for name in names if not name.startswith(INTERNAL_PREFIXES))

    def probe(self) -> None:
        key = f"{PROBE_PREFIX}{secrets.token_hex(8)}"
        payload = f"campaign store probe {key}\n".encode()
        self.put_bytes(payload, key)
        try:
            read_back = self.get_bytes(key)
        finally:
            self._remove(key)
        if read_back != payload:
            raise StoreError(f"the probe {self.where(key)} read back different bytes than were written.")

    def _writable_path(self, key: str) -> Path:
        dest = self.root / check_key(key, store_url=self.url)
        make_folder(dest.parent, purpose=f"for the store {self.root}")
        return dest

    @contextmanager
    def _stored(self, key: str) -> Iterator[BinaryIO]:
        """The stored file, open for reading; NotInStore if absent, StoreError if it cannot be read."""
        path = self.root / check_key(key, store_url=self.url)
        with _read_errors(f"cannot read {path}"):
            try:
                file = open(path, "rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
                raise NotInStore(f"{path} is not in the store.") from error
            with file:
                yield file

    def _remove(self, key: str) -> None:
        path = self.root / key
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot delete {path}: {error.strerror or error}; delete it by hand."
            ) from error

    def _refuse_walk_error(self, error: OSError) -> None:
        if not isinstance(error, (FileNotFoundError, NotADirectoryError)):  # those: nothing there
            raise self._listing_error(error) from error

    def _listing_error(self, error: OSError) -> StoreError:
        return StoreError(
            f"cannot list {error.filename or self.root}: {error.strerror or error}. "
            "Fix the folder's permissions or pass another --store."
        )


def make_folder(folder: Path, *, purpose: str) -> None:
    """Create folder and its parents, or raise StoreError saying which and what to do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"cannot create the folder {folder} {purpose}: {error.strerror or error}. "
            "Create it yourself (and make it writable), or pass another --store."
        ) from error


@contextmanager
def _read_errors(failed: str) -> Iterator[None]:
    """An OSError becomes a StoreError starting with failed (errors writing are StoreErrors already)."""
    try:
        yield
    except OSError as error:
        raise StoreError(f"{failed}: {error.strerror or error}.") from error


def _read_unchanged(source: BinaryIO, path: Path, *, dest: Path) -> Iterator[memoryview]:
    """read_chunks, then StoreError (before anything is renamed) if the file changed meanwhile."""
    before = os.fstat(source.fileno())
    yield from read_chunks(source)
    # A stage output still being written would otherwise be stored torn, with a matching digest.
    refuse_if_changed(path, before, os.fstat(source.fileno()), dest=dest)


def refuse_if_changed(path: Path, before: os.stat_result, after: os.stat_result, *, dest: Path | str) -> None:
    """StoreError if the file at path was written to between the two stats (size or mtime moved)."""
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise StoreError(
            f"{path} changed while it was being stored as {dest} ({before.st_size} bytes, then "
            f"{after.st_size}). Something is still writing it: wait for it to finish, then run again."
        )
