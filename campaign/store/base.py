"""What every store offers: verified writes, reads, listing and a probe.

Keys are '/'-separated paths relative to the store root, e.g. 'runs/<id>/journal.jsonl'.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from campaign.store.files import Digest, hash_chunks, read_chunks


@dataclass(frozen=True)
class Artifact:
    """One object in the store, as written and verified."""

    key: str
    size: int
    sha256: str  # lowercase hex

    def to_dict(self) -> dict:
        return {"key": self.key, "size": self.size, "sha256": self.sha256}


class Store(abc.ABC):
    """A place artifacts go. Every write is read back and compared before it counts."""

    url: str

    @abc.abstractmethod
    def put_file(self, path: Path, key: str) -> Artifact:
        """Upload a local file; read back size and SHA-256; raise StoreError naming the key on mismatch."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes, key: str, *, durable: bool = True) -> Artifact:
        """Same as put_file for an in-memory payload (journal, manifest, run.json).

        durable=False: the caller can write data again from a durable copy of its own (the local
        journal, a growing results file), so a folder store skips the fsyncs; a power loss may lose
        or empty such an object, which its reader must take for absent. S3 writes are durable anyway.
        """

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read an object; raise NotInStore if it is absent."""

    @abc.abstractmethod
    def download(self, key: str, path: Path) -> None:
        """Copy an object to a local file (atomically); raise NotInStore if absent."""

    def download_hashed(self, key: str, path: Path) -> Digest:
        """download, then the size and SHA-256 of the bytes now at path (hashed from the local file, so a
        caller checking them against its own record checks what it will use); NotInStore if absent."""
        self.download(key, path)
        with open(path, "rb") as file:
            return hash_chunks(read_chunks(file))

    @abc.abstractmethod
    def stat(self, key: str) -> Artifact | None:
        """Size and SHA-256 as the store records them, or None when absent."""

    @abc.abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """All keys under prefix (recursive), sorted."""

    @abc.abstractmethod
    def list_children(self, prefix: str) -> list[str]:
        """Immediate child names under prefix ('runs/' -> run ids), sorted."""

    @abc.abstractmethod
    def probe(self) -> None:
        """Write, read back and delete a small probe object; raise StoreError if any step fails."""

    @abc.abstractmethod
    def where(self, key: str) -> str:
        """The full address of key, for messages: '/abs/path/key' or 's3://bucket/prefix/key'."""

    def verify(self, artifact: Artifact, *, deep: bool = False) -> str | None:
        """None when the stored object matches artifact, else what is wrong, in one sentence.

        Shallow compares the recorded size and checksum; deep re-reads the content.
        """
        stored = self.content_digest(artifact.key) if deep else self.stat(artifact.key)
        if stored is None:
            return f"{self.where(artifact.key)} is missing"
        if stored.size != artifact.size:
            return f"{self.where(artifact.key)} is {stored.size} bytes, the manifest says {artifact.size}"
        if stored.sha256 != artifact.sha256:
            return f"{self.where(artifact.key)} has sha256 {stored.sha256}, the manifest says {artifact.sha256}"
        return None

    @abc.abstractmethod
    def put_conditional(self, data: bytes, key: str, *, expect: str | None) -> str:
        """Write data only if key's current version is `expect` (None: only if key does not exist).

        Returns the new version tag; raises Conflict when the object is not in the expected state.
        The building block of the lease (S3: If-None-Match / If-Match; a folder: a lock file).
        """

    @abc.abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and version tag, or None when absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove key (absent is fine)."""

    @abc.abstractmethod
    def content_digest(self, key: str) -> Artifact | None:
        """Size and SHA-256 computed from the object's bytes, or None when absent."""
