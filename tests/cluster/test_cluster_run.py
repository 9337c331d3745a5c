"""`campaign run … --cluster NAME` and `campaign resume RUN --cluster NAME` on a small local cluster (no services:
the stages themselves), and `on: all` stages: every node in parallel, a log per node, failing if any node fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.conftest import make_repo, run_cli

from .conftest import cluster_cli, down_if_up

CAMPAIGN = """\
name: fan
scale_factors: [1]
vars: {{marker: "{marker}"}}
cluster: {{nodes: 3}}
stages:
  - name: everywhere
    kind: validate
    on: all
    run: echo "hello from $CAMPAIGN_NODE_ADDRESS for $CAMPAIGN_STAGE_RUN"; test "$CAMPAIGN_NODE_INDEX" != "{failing}"
  - name: flaky
    kind: bench
    needs: [everywhere]
    run: test -f {{{{ vars.marker }}}} || {{ touch {{{{ vars.marker }}}}; exit 1; }}
"""


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, Path]]:
    failing = getattr(request, "param", "none")
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": CAMPAIGN.format(marker=tmp_path / "marker", failing=failing)})
    state = tmp_path / "state"
    up = cluster_cli(repo, state, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    yield repo, state
    down_if_up(repo, state)


def run(repo: Path, state: Path, *args: str):
    return run_cli(repo, *args, "--state-dir", str(state), "--store", str(state / "store"))


def test_a_cluster_run_fails_then_resumes_on_the_cluster(cluster):
    repo, state = cluster
    first = run(repo, state, "run", "--cluster", "fan")
    assert first.returncode == 4, first.stdout + first.stderr
    run_id = first.stdout.splitlines()[0].removeprefix("run: ")
    logs = state / "runs" / run_id / "logs"
    for index in (1, 2, 3):
        assert f"hello from 127.0.1.{index} for everywhere" in (logs / f"everywhere.log.node{index}.log").read_text()
    assert "on: all — 3 nodes succeeded, 0 failed" in (logs / "everywhere.log").read_text()
    elsewhere = run(repo, state, "resume", run_id)
    assert elsewhere.returncode == 2 and f"campaign resume {run_id} --cluster NAME" in elsewhere.stderr
    resumed = run(repo, state, "resume", run_id, "--cluster", "fan")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


@pytest.mark.parametrize("cluster", ["2"], indirect=True)
def test_an_on_all_stage_fails_when_one_node_fails(cluster):
    repo, state = cluster
    result = run(repo, state, "run", "--cluster", "fan")
    assert result.returncode == 4
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    log = (state / "runs" / run_id / "logs" / "everywhere.log").read_text()
    assert "== node 2 (127.0.1.2, workers): exit 1" in log and "2 nodes succeeded, 1 failed [2]" in log


def test_a_cluster_campaign_is_refused_without_a_cluster(cluster):
    repo, state = cluster
    result = run(repo, state, "run")
    assert result.returncode == 3 and "campaign cluster up" in result.stderr and "--cluster NAME" in result.stderr
