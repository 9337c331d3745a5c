"""Sweeps end to end on moto: `campaign run --target aws --instance-types A,B,C` with the real terraform CLI
and the real hashicorp/aws provider against moto's server (tests/aws/tf_moto.py), one type after another.

Named fakes, for what cannot run here (as in test_aws_run_on_moto.py): EC2 booting the instances
(InstancePlayer runs the userdata moto holds, as a local rehearsal) and the AL2023 system setup. The type
that fails (`t3.medium`) is created, but its played instance cannot start the agent: a stand-in command that
exits 70 instead of `campaign agent`, as when an instance's setup breaks. (A type EC2 does not know or offer is
refused by the sweep's preflight before any type runs: tests/aws/test_fleet_preflight.py.)

What is proven: a thread samples moto's instances all along, so "never two instances of the sweep alive at
once" is observed, not inferred; every run's instance has its member's type; a kill -9 of the `campaign
run` process is resumed: the finished type is not run again, the interrupted one is brought down (`campaign
down`) and run again as a new run, its first run id kept as superseded.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.targets.aws import target
from tests.aws.instance_player import InstancePlayer, rehearsal_params
from tests.core.conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, git, make_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TAG = "campaign:run-id"
ALIVE = ("pending", "running", "stopping", "stopped", "shutting-down")
SWEEP = ("t3.micro", "t3.medium", "t3.small")
FAILING = "t3.medium"
AGENT_CANNOT_START = ("bash", "-c", "echo 'stand-in: this instance cannot start the agent' >&2; exit 70")


class AliveSampler:
    """Samples moto's instances of every run every 0.3 s: which runs have an instance not terminated."""

    def __init__(self, harness):
        self.ec2 = harness.client("ec2")
        self.samples: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            found = self.ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": [RUN_TAG]}])
            alive = {
                tag["Value"]
                for reservation in found["Reservations"]
                for instance in reservation["Instances"]
                if instance["State"]["Name"] in ALIVE
                for tag in instance.get("Tags", [])
                if tag["Key"] == RUN_TAG
            }
            self.samples.append(alive)

    def __enter__(self) -> AliveSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def seen(self) -> set[str]:
        return set().union(*self.samples)


def campaign(*args: str) -> tuple[int, str]:
    """`campaign` in this process (so the moto wiring applies), its output captured."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = main(list(args))
    return code, buffer.getvalue()


def instance_types_of(harness, run_id: str) -> list[str]:
    found = harness.client("ec2").describe_instances(Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}])
    return [i["InstanceType"] for r in found["Reservations"] for i in r["Instances"]]


@contextlib.contextmanager
def aws_sweep_repo(harness, root: Path, *, failing: str | None = None):
    """The toy repository pushed to a bare remote, configured for the AWS target on moto (bucket existing),
    a player for its instances and a sampler of what is alive; the moto wiring as in test_aws_run_on_moto."""
    remote = root / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = make_repo(
        root / "repo", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": BENCH_PY}
    )
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    bucket = f"campaign-sweep-{uuid.uuid4().hex[:10]}"
    harness.client("s3").create_bucket(Bucket=bucket)
    config = root / "config.toml"
    config.write_text(
        f'[aws]\nbucket = "{bucket}"\nprefix = "campaigns"\ninstance_type = "t3.nano"\n'
        "poll_interval_s = 0.2\nmax_hours = 0.1\n"
    )
    with pytest.MonkeyPatch.context() as patch, harness.activated():
        patch.setenv("CAMPAIGN_CONFIG", str(config))
        patch.chdir(repo)
        harness.override_workspaces(patch)
        original = target.userdata_params

        def played(settings, *rest):
            params = rehearsal_params(original(settings, *rest), root / "instances")
            return replace(params, campaign_command=AGENT_CANNOT_START) if settings.instance_type == failing else params

        patch.setattr(target, "userdata_params", played)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        with InstancePlayer(harness, root / "instances") as player, AliveSampler(harness) as sampler:
            yield {"repo": repo, "bucket": bucket, "player": player, "sampler": sampler, "root": root}
        signal.signal(signal.SIGINT, previous)


def sweep_record(repo: Path) -> dict:
    [path] = (repo / ".campaign" / "sweeps").glob("*/sweep.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def swept(tf_moto_session, tmp_path_factory):
    """One sweep of three types, the second one EC2 does not offer; several tests read what it left. Its
    player and sampler stop before the tests (they would play another test's instances too)."""
    with aws_sweep_repo(tf_moto_session, tmp_path_factory.mktemp("sweep"), failing=FAILING) as env:
        started = time.monotonic()
        code, output = campaign("run", "sf0.01", "--target", "aws", "--instance-types", ",".join(SWEEP))
        env.update(code=code, output=output, seconds=time.monotonic() - started, record=sweep_record(env["repo"]))
        env["status"] = campaign("status", env["record"]["sweep_id"])
        env["played"] = env["player"].wait_until_powered_off()
    env["harness"] = tf_moto_session
    with tf_moto_session.activated():
        yield env


def test_the_types_run_one_after_another_never_two_alive(swept):
    record, sampler = swept["record"], swept["sampler"]
    members = record["members"]
    assert [m["instance_type"] for m in members] == list(SWEEP)
    ran = [m["run_id"] for m in members]
    assert sampler.seen() == set(ran), sampler.samples  # every type's instance was observed alive …
    assert max(len(alive) for alive in sampler.samples) == 1  # … never two at once
    first_alive = [next(i for i, s in enumerate(sampler.samples) if run in s) for run in ran]
    last_alive = [max(i for i, s in enumerate(sampler.samples) if run in s) for run in ran]
    for before, after in itertools.pairwise(range(len(ran))):
        assert last_alive[before] < first_alive[after]
    for before, after in itertools.pairwise(members):
        assert before["ended_at"] <= after["started_at"]
    for member in members:
        assert instance_types_of(swept["harness"], member["run_id"]) == [member["instance_type"]]
        assert swept["harness"].tagged(member["run_id"]) == []  # destroyed before the next type began
    print(f"3-type sweep on moto: {swept['seconds']:.0f} s")


def test_a_type_that_fails_is_recorded_and_the_sweep_goes_on(swept):
    code, output, members = swept["code"], swept["output"], swept["record"]["members"]
    assert code == 4, output
    assert [m["state"] for m in members] == ["succeeded", "failed", "succeeded"], output
    assert swept["record"]["state"] == "failed"
    assert members[1]["run_id"] in members[1]["reason"] and "not finished" in members[1]["reason"], members[1]
    assert f"sweep {swept['record']['sweep_id']}: {FAILING} failed" in output
    assert "1 of 3 instance types failed" in output and "the sweep goes on" in output
    assert len(swept["played"]) == 3, swept["played"]  # the failing type had its instance: its agent failed


def test_status_shows_every_type_and_the_store_holds_the_record(swept):
    code, text = swept["status"]
    record = swept["record"]
    assert code == 0, text
    assert f"sweep {record['sweep_id']}: failed" in text
    for member in record["members"]:
        assert member["instance_type"] in text and member["state"] in text
        assert member["run_id"] is None or member["run_id"] in text
    stored = (
        swept["harness"]
        .client("s3")
        .get_object(Bucket=swept["bucket"], Key=f"campaigns/sweeps/{record['sweep_id']}/sweep.json")
    )
    assert json.loads(stored["Body"].read()) == record


LAUNCHER = """\
import sys
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.targets.aws import target
from tests.aws.instance_player import rehearsal_params
from tests.aws.tf_moto import TfMoto

endpoint, instances, *argv = sys.argv[1:]
patch = pytest.MonkeyPatch()
TfMoto(endpoint=endpoint, cli_config=Path("-"), plugin_cache=Path("-")).override_workspaces(patch)
original = target.userdata_params
patch.setattr(target, "userdata_params", lambda *a: rehearsal_params(original(*a), Path(instances)))
sys.exit(main(argv))
"""


def wait_for(condition, what: str, timeout_s: float = 240):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_kill_9_of_the_sweep_is_resumed(tf_moto, tmp_path):
    """`campaign run --instance-types A,B` in its own process (the moto wiring applied by a launcher), killed
    with SIGKILL while B's instance runs; `campaign resume SWEEP` then brings B's run down, runs B again as
    a new run (the first kept as superseded) and never runs A again."""
    with aws_sweep_repo(tf_moto, tmp_path) as env:
        launcher = tmp_path / "launch.py"
        launcher.write_text(LAUNCHER)
        log = tmp_path / "sweep.log"
        command = [sys.executable, "-u", str(launcher), tf_moto.endpoint, str(tmp_path / "instances")]
        command += ["run", "sf0.01", "--target", "aws", "--instance-types", "t3.micro,t3.small"]
        environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with open(log, "wb") as sink:
            process = subprocess.Popen(command, cwd=env["repo"], env=environment, stdout=sink, stderr=subprocess.STDOUT)

        def second_running() -> str | None:
            text = log.read_text()
            if "t3.small (type 2 of 2)" not in text or "watching" not in text.split("t3.small (type 2 of 2)")[1]:
                return None
            run_id = sweep_record(env["repo"])["members"][1]["run_id"]
            return run_id if run_id and run_id in env["sampler"].seen() else None

        killed_run = wait_for(second_running, "the second type's instance to run")
        process.send_signal(signal.SIGKILL)
        process.wait()
        record = sweep_record(env["repo"])
        first_run = record["members"][0]["run_id"]
        assert [m["state"] for m in record["members"]] == ["succeeded", "running"], log.read_text()
        code, status = campaign("status", record["sweep_id"])
        assert code == 0 and f"sweep {record['sweep_id']}: dead" in status, status

        code, output = campaign("resume", record["sweep_id"])
        assert code == 0, output
        resumed = sweep_record(env["repo"])
        assert resumed["state"] == "succeeded" and resumed["members"][0]["run_id"] == first_run
        second = resumed["members"][1]
        assert second["superseded"] == [killed_run] and second["run_id"] not in (None, killed_run)
        destroyed = output.index(f"destroyed: no instance of run {killed_run} is left")
        assert destroyed < output.index(f"run: {second['run_id']}"), output  # brought down before the new run
        assert max(len(alive) for alive in env["sampler"].samples) == 1, env["sampler"].samples
        assert env["sampler"].seen() == {first_run, killed_run, second["run_id"]}
        assert len(env["player"].played) == 3  # A once, B twice: A was not run again
        for run_id in (first_run, killed_run, second["run_id"]):
            assert tf_moto.tagged(run_id) == []
