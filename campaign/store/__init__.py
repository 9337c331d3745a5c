"""Stores: where artifacts go. `open_store` picks one from a URL or folder path."""

from __future__ import annotations

import re
from pathlib import Path

from campaign.errors import InputError
from campaign.store.base import Artifact, Store

__all__ = ["Artifact", "Store", "check_store_address", "open_store"]

ACCEPTED_FORMS = "a local folder (e.g. .campaign/store or /data/store) or s3://BUCKET/PREFIX (lower-case s3://)"
# Anything that starts like a URL (`gs://`, `file:///`, `S3://`, `s3:/b`) but is not s3://: never a folder name.
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
# S3's bucket naming rules: 3-63 characters, lower-case letters, digits, '.' and '-', letter or digit at both ends.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_store_address(text: str) -> None:
    """Refuse (InputError) a --store value that is neither a folder path nor a well-formed s3://BUCKET/PREFIX."""
    if not text.strip():
        raise InputError(f"--store is empty. Give {ACCEPTED_FORMS}.")
    if text.startswith("s3://"):
        bucket = text.removeprefix("s3://").partition("/")[0]
        if not _BUCKET.match(bucket):
            raise InputError(
                f"{text!r} is not an S3 store address: write s3://BUCKET or s3://BUCKET/PREFIX. "
                "BUCKET is S3's bucket name: 3-63 lower-case letters, digits, '.' or '-'."
            )
        return
    if _URL_LIKE.match(text):
        raise InputError(
            f"store {text!r} is neither a local folder nor an S3 address; campaign would have made a "
            f"folder named like a URL. Accepted: {ACCEPTED_FORMS}."
        )


def open_store(url: str | Path) -> Store:
    """'s3://bucket/prefix' opens the S3 store (boto3 imported only then); a folder path the folder store."""
    text = str(url)
    check_store_address(text)
    if text.startswith("s3://"):
        from campaign.store.s3 import S3Store

        return S3Store.from_url(text)
    from campaign.store.local import LocalStore

    return LocalStore(Path(text))
