"""A store in a local folder: every write is atomic and read back before it counts.

A write goes to a temp file beside its destination, is hashed while copied (one pass over the
source), fsynced, re-read and compared (size and SHA-256), and only then renamed into place (the
folder fsynced when the name is new). A failed write therefore never replaces what was there
before. Bytes the caller can write again (`durable=False`: journal segments, incremental syncs)
and downloads (the store holds them) skip the fsyncs.

The folder keeps no checksum records: `stat()` hashes the content, so shallow and deep
verification are the same here.

The key checks, hashing and the atomic write live in campaign.store.files, shared with S3.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from campaign.errors import Conflict, NotInStore, StoreError
from campaign.store.base import Artifact, Store
from campaign.store.files import (
    INTERNAL_PREFIXES,
    LOCK_PREFIX,
    PROBE_PREFIX,
    TEMP_PREFIX,
    Digest,
    check_key,
    check_prefix,
    hash_chunks,
    make_folder,
    read_chunks,
    refuse_if_changed,
    write_atomically,
)


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

    def put_bytes(self, data: bytes, key: str, *, durable: bool = True) -> Artifact:
        dest = self._writable_path(key)
        written = write_atomically(dest, [data], durable=durable)
        return Artifact(key, written.size, written.sha256)

    def get_bytes(self, key: str) -> bytes:
        with self._stored(key) as file:
            return file.read()

    def put_conditional(self, data: bytes, key: str, *, expect: str | None) -> str:
        dest = self._writable_path(key)
        with self._locked(dest):
            current = self.read_versioned(key)
            found = current[1] if current else None
            if found != expect:
                raise Conflict(f"{dest} changed: expected version {expect or 'absent'}, found {found or 'absent'}.")
            return write_atomically(dest, [data]).sha256

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self.get_bytes(key)
        except NotInStore:
            return None
        return data, hash_chunks([data]).sha256

    def delete(self, key: str) -> None:
        self._remove(check_key(key, store_url=self.url))

    def download(self, key: str, path: Path) -> None:
        path = Path(path)
        with self._stored(key) as source:
            make_folder(path.parent, purpose=f"to download {self.where(key)} into")
            write_atomically(path, read_chunks(source), durable=False)  # the store keeps the durable copy

    def download_hashed(self, key: str, path: Path) -> Digest:
        """A kernel-side copy (copy_file_range) into a temp file beside path, hashed once, then renamed: one
        pass over the bytes in Python instead of download's three (hash, write, read back)."""
        source, path = self.root / check_key(key, store_url=self.url), Path(path)
        make_folder(path.parent, purpose=f"to download {source} into")
        temp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            with _read_errors(f"cannot copy {source} to {path}"):
                try:
                    shutil.copyfile(source, temp)
                except (FileNotFoundError, IsADirectoryError) as error:
                    if not source.is_file():
                        raise NotInStore(f"{source} is not in the store.") from error
                    raise
                with open(temp, "rb") as copied:
                    digest = hash_chunks(read_chunks(copied))
                os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return digest

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

    @contextmanager
    def _locked(self, dest: Path) -> Iterator[None]:
        """An exclusive lock for dest, held across read-compare-write (flock: released if we die).

        Lock files live in one hidden folder at the root, so run folders hold only artifacts.
        """
        name = hash_chunks([str(dest.relative_to(self.root)).encode()]).sha256[:32]
        lock_path = self.root / f"{LOCK_PREFIX}files" / name
        make_folder(lock_path.parent, purpose=f"for the store's locks in {self.root}")
        with _read_errors(f"cannot lock {lock_path}"), open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _remove(self, key: str) -> None:
        path = self.root / key
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StoreError(f"cannot delete {path}: {error.strerror or error}; delete it by hand.") from error

    def _refuse_walk_error(self, error: OSError) -> None:
        if not isinstance(error, (FileNotFoundError, NotADirectoryError)):  # those: nothing there
            raise self._listing_error(error) from error

    def _listing_error(self, error: OSError) -> StoreError:
        return StoreError(
            f"cannot list {error.filename or self.root}: {error.strerror or error}. "
            "Fix the folder's permissions or pass another --store."
        )


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
