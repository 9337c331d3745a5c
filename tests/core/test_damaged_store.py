"""Damaged store content: each command names the damaged object (exit 5), never a traceback; verify
cross-checks the manifest against the journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import campaign.prebuilt.artifact as prebuilt
from campaign.spec.load import load_campaign
from campaign.store.local import LocalStore

from .conftest import run_cli

COMMANDS = (
    ("status", "{run}"),
    ("logs", "{run}", "gen[sf0.01]"),
    ("verify", "{run}"),
    ("plan", "--resume", "{run}"),
    ("resume", "{run}"),
)


@pytest.fixture
def finished(toy_repo: Path) -> tuple[Path, str]:
    result = run_cli(toy_repo, "run")
    assert result.returncode == 0, result.stderr
    return toy_repo, result.stdout.splitlines()[0].removeprefix("run: ")


def in_store(repo: Path, run_id: str, name: str) -> Path:
    return repo / ".campaign/store/runs" / run_id / name


def damage(repo: Path, run_id: str, name: str, data: bytes) -> None:
    """Write data over the run's object in the store and over its local copy, if it has one."""
    for path in (in_store(repo, run_id, name), repo / ".campaign/runs" / run_id / name):
        if path.exists():
            path.write_bytes(data)


def assert_names_damage(result, *expected: str) -> None:
    assert result.returncode == 5, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def corrupt_middle_line(path: Path) -> bytes:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"kind": "stage", "sta\x00garbage\n'
    return b"".join(lines)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0] + ("-resume" if "--resume" in c else ""))
def test_a_journal_with_a_corrupt_line_in_the_middle_is_named(finished, command):
    repo, run_id = finished
    damage(repo, run_id, "journal.jsonl", corrupt_middle_line(in_store(repo, run_id, "journal.jsonl")))
    result = run_cli(repo, *(part.format(run=run_id) for part in command))
    assert_names_damage(result, "journal.jsonl is damaged: line 3 is not JSON")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0] + ("-resume" if "--resume" in c else ""))
@pytest.mark.parametrize("content", [b"[]", b'{"run_id": 5}', b"not json"], ids=["list", "wrong-keys", "text"])
def test_a_run_json_of_the_wrong_shape_is_named(finished, command, content: bytes):
    repo, run_id = finished
    damage(repo, run_id, "run.json", content)
    result = run_cli(repo, *(part.format(run=run_id) for part in command))
    assert_names_damage(result, f"runs/{run_id}/run.json is damaged: ")


def test_a_journal_entry_of_the_wrong_shape_is_named(finished):
    repo, run_id = finished
    path = in_store(repo, run_id, "journal.jsonl")
    path.write_bytes(path.read_bytes() + b'{"kind": "stage", "state": "succeeded", "ts": "x"}\n{"kind": "run"}\n')
    assert_names_damage(
        run_cli(repo, "status", run_id), "journal.jsonl is damaged: line", "is a stage entry without its stage_run"
    )


def test_runs_lists_the_other_runs_and_marks_the_damaged_one(finished):
    repo, run_id = finished
    second = run_cli(repo, "run").stdout.splitlines()[0].removeprefix("run: ")
    damage(repo, run_id, "run.json", b"[]")
    result = run_cli(repo, "runs")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert rows == {run_id: "DAMAGED", second: "succeeded"}
    assert f"runs/{run_id}/run.json is damaged: not the run.json campaign writes (a JSON list" in result.stderr


@pytest.mark.parametrize("content", [b"[]", b'{"artifacts": [{"key": 1}]}', b"{"])
def test_a_manifest_of_the_wrong_shape_is_named(finished, content: bytes):
    repo, run_id = finished
    damage(repo, run_id, "manifest.json", content)
    assert_names_damage(run_cli(repo, "verify", run_id), f"runs/{run_id}/manifest.json is damaged: ")


def test_verify_refuses_an_emptied_manifest_and_a_deleted_output(finished):
    repo, run_id = finished
    damage(repo, run_id, "manifest.json", json.dumps({"run_id": run_id, "artifacts": []}).encode())
    in_store(repo, run_id, "outputs/results/sf0.01/toy.jsonl").unlink()
    result = run_cli(repo, "verify", run_id)
    assert_names_damage(
        result,
        f"the journal recorded {in_store(repo, run_id, 'outputs/results/sf0.01/toy.jsonl')}",
        "but the manifest does not list it",
        "the run ended with",
    )


def test_verify_refuses_a_manifest_that_lost_one_artifact(finished):
    repo, run_id = finished
    manifest = json.loads(in_store(repo, run_id, "manifest.json").read_bytes())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if not a["key"].endswith("report.txt")]
    damage(repo, run_id, "manifest.json", json.dumps(manifest).encode())
    assert_names_damage(run_cli(repo, "verify", run_id), "report.txt", "but the manifest does not list it")


def test_verify_deep_says_what_it_re_read(finished):
    repo, run_id = finished
    shallow, deep = run_cli(repo, "verify", run_id), run_cli(repo, "verify", run_id, "--deep")
    assert shallow.returncode == deep.returncode == 0
    count = len(json.loads(in_store(repo, run_id, "manifest.json").read_bytes())["artifacts"])
    assert f"re-read and hashed {count} objects, " in deep.stdout and "re-read and hashed" not in shallow.stdout


@pytest.mark.parametrize(
    "content",
    [
        b"[1, 2]",
        b'{"format": 1, "tarball": "x"}',
        b'{"format": 1, "features": 7}',
        b'{"format": 1, "tarball": {"sha256": ["a"], "size": 1}}',
    ],
)
def test_a_prebuilt_target_json_of_the_wrong_shape_means_build_here(tmp_path: Path, content: bytes):
    spec = load_campaign(Path(__file__).parent / "scenarios/build/no_overlap.yaml")
    store = LocalStore(tmp_path / "store")
    digest = prebuilt.build_digest(spec, spec.build_stage)
    store.put_bytes(content, prebuilt.key("c" * 40, prebuilt.METADATA, digest))
    store.put_bytes(b'["not", "latest"]', prebuilt.LATEST)
    found = prebuilt.lookup(store, spec, "c" * 40)
    assert not found.usable
    assert f"{store.where(prebuilt.key('c' * 40, prebuilt.METADATA, digest))} is damaged: " in found.reason
    assert prebuilt.last_prebuild(store) is None


def test_a_run_json_with_fields_of_the_wrong_type_is_named(finished):
    repo, run_id = finished
    record = json.loads(in_store(repo, run_id, "run.json").read_bytes())
    damage(repo, run_id, "run.json", json.dumps({**record, "selection": ["sf1"], "store": None}).encode())
    for command in (("status", run_id), ("resume", run_id)):
        assert_names_damage(
            run_cli(repo, *command), f"runs/{run_id}/run.json is damaged: its selection, store are not text"
        )


def test_run_resume_passes_over_a_damaged_run_instead_of_refusing(finished):
    """`run --resume` looks through every run in the store: a damaged run.json of another run is named and
    passed over (it cannot be resumed anyway), not a refusal of the whole command."""
    repo, run_id = finished
    other = run_cli(repo, "run", "sf1")
    assert other.returncode == 0, other.stderr
    damage(repo, run_id, "run.json", b'["not", "a run"]')

    resumed = run_cli(repo, "run", "sf1", "--resume")

    assert resumed.returncode == 0, resumed.stderr
    assert f"--resume: passing over run {run_id}: " in resumed.stderr
    assert f"runs/{run_id}/run.json is damaged" in resumed.stderr
    assert "no unfinished run of this commit" in resumed.stderr
