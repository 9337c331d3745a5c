"""A sweep of clusters (`campaign run --target aws --instance-types A,B --nodes N`), quickly: the refusals before
anything is asked of AWS, the target chosen, the member's cluster name, and a resumed sweep bringing down the
cluster an interrupted member left. tests/cluster/test_cluster_sweep_on_moto.py runs one on moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign.cli import sweep_commands
from campaign.cli.main import main
from campaign.run.sweep import PENDING, RUNNING, Member, SweepBook, SweepRecord
from campaign.store import open_store
from campaign.targets.base import CloudTarget, RunRequest
from campaign.targets.cluster.state import CLUSTER_NAME
from campaign.targets.cluster_aws import sweep_member
from campaign.targets.cluster_aws.sweep_member import ClusterSweepMemberTarget, member_cluster_name
from campaign.targets.registry import get_target
from campaign.targets.sweep import supersede
from tests.cluster.test_cluster_aws_run import CAMPAIGN
from tests.core.conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, make_repo


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    files = {"campaign.yaml": TOY_CAMPAIGN, "clustered.yaml": CAMPAIGN, "scripts/gen.sh": GEN_SH}
    made = make_repo(tmp_path / "repo", {**files, "scripts/bench.py": BENCH_PY})
    monkeypatch.chdir(made)
    return made


def refused(capsys, *args: str) -> str:
    code = main(["run", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not Path(".campaign/sweeps").exists() and not Path(".campaign/clusters").exists()
    return err


def test_a_campaign_without_cluster_is_refused_naming_the_fix(repo, capsys):
    err = refused(capsys, "--target", "aws", "--instance-types", "t3.micro,t3.small", "--nodes", "2")
    assert "--nodes 2 (a sweep of clusters over t3.micro,t3.small)" in err and "declares no cluster: section" in err
    assert "Add `cluster: {nodes: N}`" in err and "drop --nodes" in err


def test_nodes_below_one_and_nodes_without_a_sweep_on_aws_are_refused(repo, capsys):
    err = refused(capsys, "-f", "clustered.yaml", "--target", "aws", "--instance-types", "t3.micro", "--nodes", "0")
    assert "--nodes 0: a cluster has at least one node; give --nodes 1 or more." in err
    err = refused(capsys, "-f", "clustered.yaml", "--target", "aws", "--nodes", "2")
    assert "--nodes 2: a sweep of clusters" in err and "give --target aws --instance-types A,B" in err
    err = refused(capsys, "-f", "clustered.yaml", "--instance-types", "t3.micro", "--nodes", "2")
    assert "give --target aws --instance-types A,B" in err
    err = refused(capsys, "-f", "clustered.yaml", "--cluster", "c1", "--instance-types", "t3.micro", "--nodes", "2")
    assert "--nodes 2 with --cluster c1: a kept cluster has its nodes already; drop --nodes." in err


def test_a_clustered_campaign_swept_on_aws_gets_a_fresh_cluster_per_type(repo, monkeypatch):
    started: list[tuple[str, int, dict]] = []

    def start_sweep(target, request, sweep, **_):
        started.append((target.name, sweep.nodes, dict(request.options)))

    monkeypatch.setattr(sweep_commands, "start_sweep", start_sweep)
    monkeypatch.setattr(sweep_commands, "price_list", lambda region: lambda t: None)
    for nodes in ({"nodes": 3}, {}):  # --nodes 3; without: the file's cluster: {nodes: 2}
        request = RunRequest(campaign_file=repo / "clustered.yaml", options=nodes)
        sweep_commands.run_sweep(request, "aws", ("t3.micro", "t3.small"), False)
    assert [(name, n, o["nodes"]) for name, n, o in started] == [
        ("cluster-aws-sweep", 3, 3),
        ("cluster-aws-sweep", 2, 2),
    ]
    sweep_commands.run_sweep(RunRequest(campaign_file=repo / "campaign.yaml"), "aws", ("t3.micro",), False)
    assert started[-1][0] == "aws" and started[-1][1] == 1  # no cluster: one instance per type, as before


def test_a_members_cluster_is_named_after_the_sweep_and_the_type():
    name = member_cluster_name("sweep-20261201T120000Z-abcdef0-k3f9", "c7gd.16xlarge")
    assert name == "swk3f9-c7gd-16xlarge" and CLUSTER_NAME.match(name)
    assert CLUSTER_NAME.match(member_cluster_name("sweep-x-" + "a" * 30, "m7i-flex.48xlarge"))
    target = get_target("cluster-aws-sweep")
    request = RunRequest(Path("c.yaml"), options={"sweep_id": "sweep-1-abc-q1w2", "instance_type": "t3.micro"})
    assert target.member_cluster(request) == "swq1w2-t3-micro"


def test_resuming_an_interrupted_member_brings_its_cluster_down_first(tmp_path: Path, monkeypatch):
    """The loop's supersede calls the target's down(run id); the note written before `cluster up` names the
    cluster. `lifecycle.down` is a recording stand-in here (terraform destroy on moto: the moto test)."""
    state = tmp_path / "state"
    (state / "clusters" / "swk3f9-t3-micro").mkdir(parents=True)
    (state / "clusters" / "swk3f9-t3-micro" / "cluster.json").write_text("{}")
    sweep_member._note(state, "RUN-1", "swk3f9-t3-micro")
    downs: list[tuple[Path, str]] = []
    monkeypatch.setattr(sweep_member.lifecycle, "down", lambda where, name, out: downs.append((where, name)))
    target = ClusterSweepMemberTarget()
    assert isinstance(target, CloudTarget)  # what makes the loop's supersede call down
    member = Member("t3.micro", 2, state=RUNNING, run_id="RUN-1", cluster="swk3f9-t3-micro")
    record = SweepRecord("sweep-1-abc-k3f9", "c.yaml", None, target.name, "s", None, "t", [member])
    book = SweepBook(record, open_store(str(tmp_path / "store")), state, lambda line: None)
    supersede(target, RunRequest(Path("c.yaml"), state_dir=state), book, member, lambda line: None)
    assert downs == [(state, "swk3f9-t3-micro")]
    assert member.superseded == ["RUN-1"] and member.state == PENDING
    assert not (state / "sweep-clusters" / "RUN-1").exists()
    target.down("RUN-1", state, lambda line: None)  # again: nothing left to bring down
    assert len(downs) == 1
