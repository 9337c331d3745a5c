"""Stages cannot smuggle bytes in through symlinks, nor leave processes running after they end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from campaign.run.incremental import complete_lines, prepare_for_resume
from campaign.store.local import LocalStore
from campaign.system.links import links_outside

from .conftest import make_repo, run_cli
from .test_run_local import alive, journal, started


def one_stage(run: str, produces: str = "[out.txt]", extra: str = "") -> str:
    return (
        f"name: t\nscale_factors: [1]\nstages:\n  - name: s\n    kind: data\n    run: '{run}'\n"
        f"    produces: {produces}\n{extra}"
    )


def secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:not for the store\n")
    return secret


def stored_files(repo: Path, run_id: str) -> list[str]:
    outputs = repo / ".campaign/store/runs" / run_id / "outputs"
    return sorted(p.relative_to(outputs).as_posix() for p in outputs.rglob("*") if p.is_file())


def test_an_output_that_is_a_symlink_outside_is_refused_naming_path_and_target(tmp_path: Path):
    secret = secret_file(tmp_path)
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": one_stage(f"ln -s {secret} {{{{ output_dir }}}}/out.txt")})
    result = run_cli(repo, "run")
    assert result.returncode == 4, result.stderr
    assert f"out.txt -> {secret}" in result.stderr and "cp, not ln -s" in result.stderr
    assert stored_files(repo, started(result)) == []


def test_a_symlink_inside_a_declared_folder_is_refused_and_not_stored(tmp_path: Path):
    secret = secret_file(tmp_path)
    run = f"mkdir -p {{{{ output_dir }}}}/d && echo ok > {{{{ output_dir }}}}/d/real.txt && ln -s {secret} {{{{ output_dir }}}}/d/leak"
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": one_stage(run, produces="[d]")})
    result = run_cli(repo, "run")
    assert result.returncode == 4, result.stderr
    assert f"d/leak -> {secret}" in result.stderr
    assert stored_files(repo, started(result)) == ["d/real.txt"]
    assert not any(secret.read_text() in p.read_text() for p in (repo / ".campaign/store").rglob("*") if p.is_file())


def test_an_incremental_file_linked_outside_is_never_uploaded(tmp_path: Path):
    secret = secret_file(tmp_path)
    run = f"ln -s {secret} {{{{ output_dir }}}}/r.jsonl && sleep 0.5"
    repo = make_repo(
        tmp_path / "repo", {"campaign.yaml": one_stage(run, produces="[]", extra="    incremental: r.jsonl\n")}
    )
    result = run_cli(repo, "run", "--sync-interval", "0.1")
    assert result.returncode == 4 and "r.jsonl -> " in result.stderr, result.stderr
    assert stored_files(repo, started(result)) == []


def test_a_resume_never_truncates_or_appends_through_a_link(tmp_path: Path):
    target = tmp_path / "target.jsonl"
    target.write_bytes(b'{"a": 1}\n{"torn')
    link = tmp_path / "outputs/r.jsonl"
    link.parent.mkdir()
    link.symlink_to(target)
    assert complete_lines(link) == b""
    store = LocalStore(tmp_path / "store")
    store.put_bytes(b'{"q": 1}\n', "runs/r/outputs/r.jsonl")
    assert prepare_for_resume(link, store, "runs/r/outputs/r.jsonl") == 1
    assert target.read_bytes() == b'{"a": 1}\n{"torn'
    assert not link.is_symlink() and link.read_bytes() == b'{"q": 1}\n'


def test_links_that_stay_inside_the_output_dir_are_fine(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/real.txt").write_text("x")
    (tmp_path / "data/alias.txt").symlink_to("real.txt")
    assert links_outside(tmp_path, [tmp_path / "data"]) == []


def test_what_a_stage_leaves_running_is_stopped_before_its_outputs_are_stored(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    run = (
        f"(sleep 1.5; echo late >> {{{{ output_dir }}}}/out.txt) & echo $! > {pid_file}; "
        "echo early > {{ output_dir }}/out.txt"
    )
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": one_stage(run)})
    result = run_cli(repo, "run")
    assert result.returncode == 0, result.stderr
    run_id = started(result)
    assert not alive(int(pid_file.read_text()))
    time.sleep(2)
    assert (repo / ".campaign/store/runs" / run_id / "outputs/out.txt").read_text() == "early\n"
    assert (repo / ".campaign/runs" / run_id / "outputs/out.txt").read_text() == "early\n"
    log = (repo / ".campaign/store/runs" / run_id / "logs/s.log").read_text()
    assert "the stage's main process exited, but 2 process(es) it started were still running" in log  # ( ) and sleep
    assert [e["state"] for e in journal(repo / ".campaign/store", run_id) if e["kind"] == "stage"][-1] == "succeeded"


def test_a_stage_does_not_outlive_an_agent_killed_with_sigkill(tmp_path: Path):
    pid_file = tmp_path / "stage.pid"
    script = (
        "import sys; from pathlib import Path; from campaign.system.process import run_logged; "
        f"run_logged('echo $$ > {pid_file}; exec sleep 300', cwd=Path('{tmp_path}'), env={{}}, "
        f"log_path=Path('{tmp_path}/s.log'), timeout_s=None)"
    )
    agent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    stage = int(pid_file.read_text())
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait()
    deadline = time.monotonic() + 15
    while alive(stage) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(stage)
