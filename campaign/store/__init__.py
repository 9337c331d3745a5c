"""Stores: where artifacts go. `open_store` picks one from a URL or folder path."""

from __future__ import annotations

from pathlib import Path

from campaign.store.base import Artifact, Store

__all__ = ["Artifact", "Store", "open_store"]


def open_store(url: str | Path) -> Store:
    """'s3://bucket/prefix' opens the S3 store (boto3 imported only then); anything else is a folder."""
    text = str(url)
    if text.startswith("s3://"):
        from campaign.store.s3 import S3Store

        return S3Store.from_url(text)
    from campaign.store.local import LocalStore

    return LocalStore(Path(text))
