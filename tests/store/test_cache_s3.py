"""The data cache on S3 (moto's server on 127.0.0.1): the first run stores the entry, `plan` sees it, the second
run fetches and verifies it, an object replaced behind the store's back is refused and regenerated, and
`campaign cache ls|rm` work on the bucket."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from campaign.errors import NotInStore
from tests.core.cache_helpers import cached_repo, data_token, final_entry, run_ok, stage_log
from tests.core.conftest import run_cli


def test_the_cache_works_on_s3(tmp_path: Path, s3_client, s3_bucket: str):
    repo = cached_repo(tmp_path)
    store = f"s3://{s3_bucket}/prefix"
    first, _ = run_ok(repo, "--store", store)
    key = final_entry(repo, first, "gen[sf0.01]")["cache_stored"]
    manifest = json.loads(
        s3_client.get_object(Bucket=s3_bucket, Key=f"prefix/cache/{key}/manifest.json")["Body"].read()
    )
    assert {f["path"] for f in manifest["files"]} == {"data/sf0.01/table.txt", "data/sf0.01/part/blob.bin"}
    assert f"cache hit (cache key {key[:12]})" in run_cli(repo, "plan", "--store", store).stdout

    second, _ = run_ok(repo, "--store", store)
    assert final_entry(repo, second, "gen[sf0.01]")["cached"] == key
    assert data_token(repo, second) == data_token(repo, first)

    tampered = f"prefix/cache/{key}/files/data/sf0.01/table.txt"
    s3_client.put_object(Bucket=s3_bucket, Key=tampered, Body=b"sf=0.01 token=forged\n")
    third, result = run_ok(repo, "--store", store)
    entry = final_entry(repo, third, "gen[sf0.01]")
    assert "cached" not in entry and entry["cache_stored"] == key
    assert "forged" not in data_token(repo, third)
    assert "CACHE ENTRY REFUSED" in result.stderr and f"s3://{s3_bucket}/{tampered}" in stage_log(
        repo, third, "gen[sf0.01]"
    )
    stored = s3_client.get_object(Bucket=s3_bucket, Key=tampered)["Body"].read().decode()
    assert stored == data_token(repo, third)  # the entry was replaced with the regenerated data

    listed = json.loads(run_cli(repo, "cache", "ls", "--json", "--store", store).stdout)
    assert [(e["key"], e["stage"], e["sf"], e["files"]) for e in listed] == [(key, "gen", "0.01", 2)]
    removed = run_cli(repo, "cache", "rm", key, "--store", store)
    assert removed.returncode == 0, removed.stderr
    left = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="prefix/cache/").get("Contents", [])
    assert left == []
    assert "generate" in run_cli(repo, "plan", "--store", store).stdout


def test_download_hashed_gives_the_digest_of_the_local_copy_on_both_stores(store, tmp_path: Path):
    """What a cache fetch checks against its manifest: the bytes written here, hashed (local: one kernel copy)."""
    data = bytes(range(256)) * 4000
    written = store.put_bytes(data, "cache/k/files/a.bin")
    dest = tmp_path / "out" / "a.bin"
    digest = store.download_hashed("cache/k/files/a.bin", dest)
    assert (
        (digest.size, digest.sha256) == (written.size, written.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    )
    assert dest.read_bytes() == data and sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]
    with pytest.raises(NotInStore):
        store.download_hashed("cache/k/files/absent.bin", tmp_path / "out" / "absent.bin")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]  # no temp file left behind
