"""`campaign ab --target aws`: one instance runs both sides. The userdata is started with bash here (as in
test_aws_bootstrap.py): the instance's shallow clone fetches each side's commit from the remote, builds it,
runs the rounds, and the agent stores the comparison in S3."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

from campaign.preflight.planner import make_plan
from campaign.run.keys import RunKeys
from campaign.run.record import new_run_id
from campaign.store import open_store
from campaign.targets.aws.target import AwsOptions, new_record, preflight
from campaign.targets.aws.userdata import UserdataParams, render_userdata
from tests.core.conftest import git, make_repo
from tests.core.test_ab import GENERIC_BENCH, GENERIC_CAMPAIGN

VENV_BIN = Path(sys.executable).parent


def pushed_ab_repo(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = make_repo(
        tmp_path / "repo", {"campaign.yaml": GENERIC_CAMPAIGN, "scripts/bench.py": GENERIC_BENCH, "value.txt": "10\n"}
    )
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "value.txt").write_text("20\n")
    git(repo, "commit", "-q", "-am", "twice as slow")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    return repo, remote, {"base": base, "contender": git(repo, "rev-parse", "HEAD").strip()}


def test_one_instance_runs_both_sides_and_stores_the_comparison(s3_bucket, tmp_path: Path):
    repo, remote, sides = pushed_ab_repo(tmp_path)
    store_url = f"s3://{s3_bucket}/campaigns"
    plan, root = make_plan(repo / "campaign.yaml", None, allow_dirty=False, target="aws")
    record = new_record(plan, root, new_run_id(plan.commit), store_url, keep_going=False, sides=sides, order_seed=4)
    store = open_store(store_url)
    store.put_bytes(record.to_bytes(), RunKeys(record.run_id).record)
    params = UserdataParams(
        run_id=record.run_id,
        campaign=record.campaign,
        commit=record.commit,
        repo_url=str(remote),
        store_url=store_url,
        region="us-east-1",
        watchdog_minutes=90,
        bench_user=getpass.getuser(),
        work_root=str(tmp_path / "instance"),
        install_spec="",
        campaign_command=(sys.executable, "-m", "campaign.cli"),
        system_setup=False,
        machine_control=False,
        shutdown_command="true",
        run_json_wait_s=30,
    )
    script = tmp_path / "userdata.sh"
    script.write_text(render_userdata(params))
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    bootstrap = store.get_bytes(RunKeys(record.run_id).bootstrap_log).decode()
    assert result.returncode == 0, result.stdout + result.stderr + bootstrap
    assert git(tmp_path / "instance/checkout", "rev-parse", "--is-shallow-repository").strip() == "true"
    document = json.loads(store.get_bytes(RunKeys(record.run_id).comparison))["comparisons"][0]
    [row] = document["rows"]
    assert (row["item"], row["verdict"]) == ("work", "slower") and 1.9 < row["ratio"] < 2.1
    stored = json.loads(store.get_bytes(RunKeys(record.run_id).record))
    assert stored["sides"] == sides and stored["host"]["cores"] >= 1  # the instance's own fingerprint


def test_preflight_refuses_a_side_that_is_not_pushed(s3_bucket, tmp_path: Path):
    repo, _, sides = pushed_ab_repo(tmp_path)
    (repo / "value.txt").write_text("30\n")
    git(repo, "commit", "-q", "-am", "not pushed")
    unpushed = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    options = AwsOptions(campaign_file=repo / "campaign.yaml", sides=(("base", sides["base"]), ("contender", unpushed)))
    checked = preflight(options)
    verdicts = {v.check: v for v in checked.plan.verdicts}
    assert verdicts["side base pushed"].ok
    assert verdicts["side contender pushed"].refuses
