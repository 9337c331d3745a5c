"""Data prepared once: a `cache: true` stage stores its verified outputs under <store>/cache/<key>/, later runs
fetch and verify them, a tampered or incomplete entry is refused and regenerated, `plan` says which will happen,
and `campaign cache ls|rm` manage the entries. Real runs (`campaign` in a subprocess, git, a folder store)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from campaign.errors import InputError
from campaign.planning.graph import expand
from campaign.run.cache_key import NoCacheKey, cache_key
from campaign.spec.load import load_campaign
from tests.core.cache_helpers import (
    CACHED_CAMPAIGN,
    cached_repo,
    data_token,
    final_entry,
    run_ok,
    stage_log,
)
from tests.core.conftest import REPO_ROOT, git, make_repo, run_cli


def entry_folder(repo: Path, key: str) -> Path:
    return repo / ".campaign" / "store" / "cache" / key


def test_the_second_run_fetches_the_verified_data_instead_of_generating(tmp_path: Path):
    repo = cached_repo(tmp_path)
    first, _ = run_ok(repo)
    stored = final_entry(repo, first, "gen[sf0.01]")
    key = stored["cache_stored"]
    assert "cached" not in stored
    manifest = json.loads((entry_folder(repo, key) / "manifest.json").read_text())
    assert manifest["key"] == key and manifest["stage"] == "gen" and manifest["sf"] == "0.01"
    assert sorted(f["path"] for f in manifest["files"]) == ["data/sf0.01/part/blob.bin", "data/sf0.01/table.txt"]

    second, _ = run_ok(repo)
    fetched = final_entry(repo, second, "gen[sf0.01]")
    assert fetched["state"] == "succeeded" and fetched["cached"] == key and "cache_stored" not in fetched
    assert data_token(repo, second) == data_token(repo, first)  # the first run's data, not a new token
    assert "cache hit" in stage_log(repo, second, "gen[sf0.01]")
    assert final_entry(repo, second, "bench[sf0.01]")["state"] == "succeeded"


def test_plan_says_generate_then_cache_hit(tmp_path: Path):
    repo = cached_repo(tmp_path)
    before = run_cli(repo, "plan", "--json")
    assert before.returncode == 0, before.stderr
    planned = {r["id"]: r for r in json.loads(before.stdout)["stage_runs"]}
    assert planned["gen[sf0.01]"]["cache"].startswith("generate")
    assert "cache" not in planned["bench[sf0.01]"]
    first, _ = run_ok(repo)
    key = final_entry(repo, first, "gen[sf0.01]")["cache_stored"]
    after = run_cli(repo, "plan")
    assert f"cache hit (cache key {key[:12]})" in after.stdout
    other_sf = json.loads(run_cli(repo, "plan", "sf1", "--json").stdout)["stage_runs"][0]
    assert other_sf["cache"].startswith("generate")  # another SF is another key


def test_a_tampered_entry_is_refused_loudly_and_regenerated(tmp_path: Path):
    repo = cached_repo(tmp_path)
    first, _ = run_ok(repo)
    key = final_entry(repo, first, "gen[sf0.01]")["cache_stored"]
    tampered = entry_folder(repo, key) / "files" / "data" / "sf0.01" / "table.txt"
    tampered.write_text("sf=0.01 token=forged\n")

    second, result = run_ok(repo)
    entry = final_entry(repo, second, "gen[sf0.01]")
    assert "cached" not in entry and entry["cache_stored"] == key  # generated, then the entry replaced
    assert "forged" not in data_token(repo, second) and data_token(repo, second) != data_token(repo, first)
    log = stage_log(repo, second, "gen[sf0.01]")
    assert "CACHE ENTRY REFUSED" in log and key in log and str(tampered) in log
    assert "CACHE ENTRY REFUSED" in result.stderr  # the runner's events say it too
    assert tampered.read_text() == data_token(repo, second)  # the replaced entry holds the new data

    third, _ = run_ok(repo)
    assert final_entry(repo, third, "gen[sf0.01]")["cached"] == key
    assert data_token(repo, third) == data_token(repo, second)


@pytest.mark.parametrize("damage", ["file missing", "no manifest", "manifest not json"])
def test_an_incomplete_or_damaged_entry_is_never_used(tmp_path: Path, damage: str):
    repo = cached_repo(tmp_path)
    first, _ = run_ok(repo)
    folder = entry_folder(repo, final_entry(repo, first, "gen[sf0.01]")["cache_stored"])
    if damage == "file missing":
        (folder / "files" / "data" / "sf0.01" / "part" / "blob.bin").unlink()
    elif damage == "no manifest":
        (folder / "manifest.json").unlink()  # an interrupted store: files without the manifest written last
    else:
        (folder / "manifest.json").write_text("{not json")
    second, result = run_ok(repo)
    entry = final_entry(repo, second, "gen[sf0.01]")
    assert "cached" not in entry and entry["cache_stored"]
    assert data_token(repo, second) != data_token(repo, first)
    assert "CACHE ENTRY REFUSED" in result.stderr and folder.name in result.stderr
    assert json.loads((folder / "manifest.json").read_text())["files"]  # replaced by a good entry


def test_a_resume_on_a_new_machine_fetches_the_data(tmp_path: Path):
    repo = cached_repo(tmp_path)
    run_ok(repo)  # stores the entry
    failed = run_cli(repo, "run", env={**_env(), "TOY_BENCH_FAIL": "1"})
    assert failed.returncode == 4, failed.stderr
    run_id = failed.stdout.splitlines()[0].removeprefix("run: ")
    shutil.rmtree(repo / ".campaign" / "runs" / run_id)  # a new machine: no checkout, no data, no journal
    resumed = run_cli(repo, "resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert final_entry(repo, run_id, "gen[sf0.01]")["cached"]
    assert final_entry(repo, run_id, "bench[sf0.01]")["state"] == "succeeded"


def test_cache_ls_and_rm(tmp_path: Path):
    repo = cached_repo(tmp_path)
    first, _ = run_ok(repo, "sf0.01,sf1")
    keys = sorted(final_entry(repo, first, f"gen[sf{sf}]")["cache_stored"] for sf in ("0.01", "1"))
    listed = json.loads(run_cli(repo, "cache", "ls", "--json").stdout)
    assert sorted(e["key"] for e in listed) == keys
    by_sf = {e["sf"]: e for e in listed}
    assert by_sf["1"]["stage"] == "gen" and by_sf["1"]["files"] == 2 and by_sf["1"]["size"] > 200_000
    assert by_sf["1"]["created"] and not by_sf["1"]["problem"]
    assert keys[0][:12] in run_cli(repo, "cache", "ls").stdout

    unknown = run_cli(repo, "cache", "rm", "deadbeefdeadbeef", keys[0][:3])
    assert unknown.returncode == 2
    assert "'deadbeefdeadbeef' is not a key in the store" in unknown.stderr and "Nothing was removed" in unknown.stderr
    assert len(json.loads(run_cli(repo, "cache", "ls", "--json").stdout)) == 2

    removed = run_cli(repo, "cache", "rm", keys[0][:10])
    assert removed.returncode == 0, removed.stderr
    assert [e["key"] for e in json.loads(run_cli(repo, "cache", "ls", "--json").stdout)] == [keys[1]]
    (entry_folder(repo, keys[1]) / "manifest.json").unlink()
    [incomplete] = json.loads(run_cli(repo, "cache", "ls", "--json").stdout)
    assert incomplete["key"] == keys[1] and "is incomplete" in incomplete["problem"] and incomplete["size"] is None
    assert "is incomplete" in run_cli(repo, "cache", "ls").stderr
    assert run_cli(repo, "cache", "rm", "--all").returncode == 0
    assert json.loads(run_cli(repo, "cache", "ls", "--json").stdout) == []
    assert run_cli(repo, "cache", "rm").returncode == 2  # neither keys nor --all


def _env() -> dict:
    import os

    return dict(os.environ)


def _key(repo: Path, sf: str = "0.01", campaign: str | None = None) -> str:
    path = repo / "campaign.yaml"
    if campaign is not None:
        path.write_text(campaign)
    spec = load_campaign(path)
    run = next(r for r in expand(spec, (sf,)) if r.stage.name == "gen")
    return cache_key(spec, run, repo).key


def test_the_key_changes_with_command_tool_version_sf_and_used_file(tmp_path: Path, monkeypatch):
    repo = cached_repo(tmp_path)
    base = _key(repo)
    assert _key(repo) == base  # the same inputs: the same key
    assert _key(repo, sf="1") != base
    monkeypatch.setenv("TOY_TOOL_VERSION", "2.0")
    assert _key(repo) != base
    monkeypatch.delenv("TOY_TOOL_VERSION")
    assert _key(repo) == base
    script = repo / "scripts" / "gen.sh"
    script.write_text(script.read_text() + "# a comment changes the file\n")
    assert _key(repo) != base
    git(repo, "checkout", "--", "scripts/gen.sh")
    assert _key(repo) == base
    assert (
        _key(repo, campaign=CACHED_CAMPAIGN.replace("{{ sf }} {{ output_dir }}", "{{ sf }} -v {{ output_dir }}"))
        != base
    )


def test_a_listed_file_that_does_not_exist_gives_no_key(tmp_path: Path):
    repo = cached_repo(tmp_path)
    (repo / "scripts" / "gen.sh").unlink()
    with pytest.raises(NoCacheKey, match=r"scripts/gen\.sh"):
        _key(repo)


BAD = {
    "incremental": ('    incremental: "r/{{ sf }}.jsonl"\n', "cannot cache an incremental results file"),
    "needs": ("    needs: [other]\n", "cannot be on a stage with needs"),
    "run_id": (None, "{{ run_id }}"),
    "no cache_inputs": (None, "cache: true needs cache_inputs"),
    "unknown input": (None, "cache_inputs: unknown key 'tool'"),
    "outside file": (None, "must be a path relative to the repository root"),
    "not a bool": (None, "cache must be true or false"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_cache_on_a_stage_it_cannot_key_is_refused_with_file_and_line(tmp_path: Path, case: str):
    extra, message = BAD[case]
    text = CACHED_CAMPAIGN.replace(
        "  - name: bench", "  - name: other\n    kind: data\n    run: 'true'\n  - name: bench"
    )
    if extra:
        text = text.replace("    cache: true\n", "    cache: true\n" + extra)
    text = {
        "run_id": text.replace("{{ output_dir }}/data/sf{{ sf }}\n", "{{ output_dir }}/data/sf{{ sf }} {{ run_id }}\n"),
        "no cache_inputs": text.replace("    cache_inputs:", "    description:"),
        "unknown input": text.replace("{tools:", "{tool:"),
        "outside file": text.replace("files: [scripts/gen.sh]", "files: [../secret]"),
        "not a bool": text.replace("cache: true", "cache: yes please"),
    }.get(case, text)
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as refused:
        load_campaign(path)
    assert message in str(refused.value)
    assert f"{path}:" in str(refused.value) and "stage 'gen'" in str(refused.value)


def test_cache_on_a_build_and_cache_inputs_without_cache_are_refused(tmp_path: Path):
    path = tmp_path / "campaign.yaml"
    path.write_text(
        "name: x\nscale_factors: [1]\nstages:\n"
        "  - name: build\n    kind: build\n    run: make\n    build_output: [bin]\n    produces: [b]\n"
        "    cache: true\n    cache_inputs: {files: [Makefile]}\n"
        "  - name: gen\n    kind: data\n    run: make\n    produces: [d]\n    cache_inputs: {files: [Makefile]}\n"
    )
    with pytest.raises(InputError) as refused:
        load_campaign(path)
    assert f"{path}:9: stage 'build': cache: true is for data stages" in str(refused.value)
    assert f"{path}:15: stage 'gen': cache_inputs needs cache: true" in str(refused.value)


def test_the_default_tpch_campaign_generates_once_then_fetches_data_the_answers_validate_on(tmp_path: Path):
    """The project's campaign.yaml and stages/ (real tpchgen-cli, real DuckDB): the second run's data is the cache's,
    the bench's answers still match the SF 0.01 reference, and a tampered table is refused and regenerated."""
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": (REPO_ROOT / "campaign.yaml").read_text()})
    shutil.copytree(REPO_ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tpch")
    quick = ("sf0.01", "--var", "iterations=1", "--var", "queries=q01,q06", "--var", "engines=duckdb")
    first, _ = run_ok(repo, *quick)
    key = final_entry(repo, first, "tpch-generate[sf0.01]")["cache_stored"]
    second, _ = run_ok(repo, *quick)
    assert final_entry(repo, second, "tpch-generate[sf0.01]")["cached"] == key
    records = (repo / ".campaign/runs" / second / "outputs/results/sf0.01/tpch.jsonl").read_text().splitlines()
    assert records and all(json.loads(r)["valid"] is True for r in records)

    lineitem = entry_folder(repo, key) / "files/data/sf0.01/lineitem.parquet"
    lineitem.write_bytes(lineitem.read_bytes()[:-100])  # cut short
    third, result = run_ok(repo, *quick)
    entry = final_entry(repo, third, "tpch-generate[sf0.01]")
    assert "cached" not in entry and entry["cache_stored"] == key
    assert "CACHE ENTRY REFUSED" in result.stderr and str(lineitem) in result.stderr
