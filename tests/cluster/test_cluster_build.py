"""`cluster up` and `deploy` put the build stage's output on every node: the commit's prebuilt when the store has
a usable one (`campaign prebuild`), else one build in node 1's checkout, hard-linked into the others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.conftest import git, make_repo, run_cli

from .conftest import cluster_cli, down_if_up

CAMPAIGN = """\
name: built
scale_factors: [1]
cluster: {nodes: 3}
stages:
  - name: build
    kind: build
    run: mkdir -p target/release && git rev-parse HEAD > target/release/built.txt && echo built >> build-count.txt
    build_output: [target/release]
  - name: use
    kind: bench
    needs: [build]
    run: cat target/release/built.txt
"""


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    made = make_repo(tmp_path / "repo", {"campaign.yaml": CAMPAIGN})
    yield made
    down_if_up(made, tmp_path / "state")


def built(state: Path, index: int) -> Path:
    return state / "clusters" / "built" / "nodes" / str(index) / "checkout" / "target" / "release" / "built.txt"


def test_up_builds_once_and_links_the_output_into_every_node(repo: Path, tmp_path: Path):
    state = tmp_path / "state"
    up = cluster_cli(repo, state, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "build: built in node 1's checkout" in up.stdout
    head = git(repo, "rev-parse", "HEAD").strip()
    assert [built(state, i).read_text().strip() for i in (1, 2, 3)] == [head] * 3
    assert built(state, 2).stat().st_ino == built(state, 1).stat().st_ino  # a hard link, not another build
    assert not (built(state, 2).parents[2] / "build-count.txt").exists()  # nodes 2 and 3 never built


def test_deploy_fetches_the_commits_prebuilt_when_there_is_one(repo: Path, tmp_path: Path):
    state = tmp_path / "state"
    assert cluster_cli(repo, state, "up").returncode == 0
    (repo / "NOTES.md").write_text("next\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-q", "-m", "next")
    prebuild = run_cli(repo, "prebuild")
    assert prebuild.returncode == 0, prebuild.stdout + prebuild.stderr
    deployed = cluster_cli(repo, state, "deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "build: prebuilt" in deployed.stdout and "3 succeeded, 0 failed" in deployed.stdout
    head = git(repo, "rev-parse", "HEAD").strip()
    assert [built(state, i).read_text().strip() for i in (1, 2, 3)] == [head] * 3


def test_a_failing_build_fails_deploy_and_says_where_its_log_is(repo: Path, tmp_path: Path):
    state = tmp_path / "state"
    assert cluster_cli(repo, state, "up").returncode == 0
    (repo / "campaign.yaml").write_text(CAMPAIGN.replace("mkdir -p target/release &&", "exit 7 &&"))
    git(repo, "commit", "-q", "-am", "broken build")
    deployed = cluster_cli(repo, state, "deploy")
    assert deployed.returncode == 4
    assert "the build stage 'build' failed on node 1 (exit 7)" in deployed.stderr and "build.log" in deployed.stderr
