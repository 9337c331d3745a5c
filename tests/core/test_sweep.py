"""The sweep loop's logic (campaign.targets.sweep), quickly, on FakeTarget: order, one type at a time, a
failure recorded and the sweep going on, --stop-on-failure, Ctrl-C and resume; the sweep record in the
store and its mirror; `campaign status SWEEP`; the `matrix:` key and [aws] instance_types; the local target
refusing --instance-types. tests/aws/test_sweep_on_moto.py runs a sweep with real Terraform on moto."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.errors import InputError, PreflightRefused, StageFailed
from campaign.planning.verdict import Verdict
from campaign.preflight.planner import make_plan
from campaign.run.record import RunRecord
from campaign.run.sweep import FAILED, INTERRUPTED, PENDING, SUCCEEDED, SweepBook, SweepKeys, read_sweep
from campaign.spec.load import load_campaign
from campaign.store import open_store
from campaign.targets.base import Outcome, Prepared, RunRequest
from campaign.targets.sweep import SweepRequest, continue_sweep, start_sweep
from tests.core.conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, make_repo

TYPES = ("c7i.xlarge", "c7g.xlarge", "m7i.large")
PRICES = {"c7i.xlarge": 0.1785, "c7g.xlarge": 0.145, "m7i.large": 0.1008}


class FakeTarget:
    """A FAKE target (named so): it plans for real (make_plan on the toy repository) but runs nothing. Each
    run only notes when it was provisioned and torn down; a type in `fail` fails in watch, one in
    `interrupt` raises KeyboardInterrupt as Ctrl-C would. It is a cloud target: `down` is noted too."""

    name = "fake"

    def __init__(self, repo: Path, store: str, *, fail=(), interrupt=(), refuse: bool = False):
        self.repo, self.store, self.fail, self.interrupt, self.refuse = repo, store, set(fail), set(interrupt), refuse
        self.preflights: list[dict] = []
        self.events: list[tuple[str, str, float]] = []  # (event, instance type, monotonic time)
        self.downs: list[str] = []

    def preflight(self, request: RunRequest, *, for_plan: bool = False) -> Prepared:
        self.preflights.append(dict(request.options))
        plan, root = make_plan(request.campaign_file, request.selection, allow_dirty=False)
        if self.refuse:
            plan = replace(plan, verdicts=plan.verdicts + (Verdict("quota", False, "fleet over the vCPU quota"),))
        return Prepared(plan, root, self.store, request.options.get("instance_type"))

    def describe(self, prepared):
        return [f"fake: {prepared.context}"]

    def new_record(self, prepared, request):
        return RunRecord.new(prepared.plan, prepared.root, store=self.store, target="fake")

    def provision(self, prepared, record, out):
        self.events.append(("up", prepared.context, time.monotonic()))
        time.sleep(0.01)

    def execute(self, prepared, record, out):
        if prepared.context in self.interrupt:
            raise KeyboardInterrupt

    def watch(self, prepared, record, out):
        return Outcome("failed", "q3 wrong answer") if prepared.context in self.fail else Outcome("succeeded")

    def collect(self, prepared, record, outcome, out):
        pass

    def teardown(self, prepared, record, out):
        self.events.append(("down", prepared.context, time.monotonic()))

    def finish(self, prepared, record, outcome):
        if outcome.state != "succeeded":
            raise StageFailed(f"run {record.run_id} did not succeed ({outcome.state}): {outcome.reason}.")

    def show_userdata(self, request):
        return ""

    def down(self, run_id, state_dir, out):
        self.downs.append(run_id)

    def doctor(self, out):
        return 0

    def describe_json(self, prepared):
        return {}

    def resume(self, run_id, request, out):
        raise AssertionError("a sweep never resumes a run: it runs the type again")

    def resume_unfinished(self, request, out):
        raise AssertionError("not part of a sweep")

    def resume_plan(self, run_id, request):
        raise AssertionError("not part of a sweep")

    def ran(self) -> list[str]:
        return [kind for event, kind, _ in self.events if event == "up"]


@pytest.fixture
def toy(tmp_path: Path, monkeypatch):
    repo = make_repo(
        tmp_path / "repo", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": BENCH_PY}
    )
    monkeypatch.chdir(repo)
    store = str(tmp_path / "store")
    return {"repo": repo, "store": store, "state": repo / ".campaign", "lines": []}


def sweep(toy, target, *, stop_on_failure=False, types=TYPES):
    request = RunRequest(campaign_file=toy["repo"] / "campaign.yaml", store=toy["store"])
    return start_sweep(
        target,
        request,
        SweepRequest(types, stop_on_failure=stop_on_failure),
        price_of=PRICES.get,
        state_dir=toy["state"],
        out=toy["lines"].append,
    )


def stored(toy):
    store = open_store(toy["store"])
    [sweep_id] = store.list_children("sweeps/")
    return read_sweep(store, toy["state"], sweep_id), json.loads(store.get_bytes(SweepKeys(sweep_id).record))


def test_types_run_in_order_one_at_a_time_under_one_sweep_id(toy):
    target = FakeTarget(toy["repo"], toy["store"])
    record = sweep(toy, target)
    assert target.preflights[0]["instance_types"] == TYPES  # the whole sweep, once, first
    assert [options["instance_type"] for options in target.preflights[1:]] == list(TYPES)
    assert "instance_types" not in target.preflights[1]
    assert target.ran() == list(TYPES)
    events = [event for event, _, _ in target.events]
    assert events == ["up", "down"] * 3  # each torn down before the next is provisioned
    assert record.state == SUCCEEDED and [m.state for m in record.members] == [SUCCEEDED] * 3
    assert len({m.run_id for m in record.members}) == 3
    assert [m.usd_per_hour for m in record.members] == [PRICES[t] for t in TYPES]
    again, document = stored(toy)
    assert again == record and document["members"][2]["run_id"] == record.members[2].run_id
    mirror = toy["state"] / "sweeps" / record.sweep_id / "sweep.json"
    assert json.loads(mirror.read_text()) == document
    for before, after in zip(record.members, record.members[1:], strict=False):
        assert before.ended_at <= after.started_at
    assert toy["lines"][0] == f"sweep: {record.sweep_id} (3 instance types, one after another)"


def test_a_failing_type_is_recorded_and_the_sweep_goes_on(toy):
    target = FakeTarget(toy["repo"], toy["store"], fail={"c7g.xlarge"})
    with pytest.raises(StageFailed) as failed:
        sweep(toy, target)
    assert target.ran() == list(TYPES)
    record, _ = stored(toy)
    assert [m.state for m in record.members] == [SUCCEEDED, FAILED, SUCCEEDED]
    assert record.state == FAILED
    assert "q3 wrong answer" in record.members[1].reason
    message = str(failed.value)
    assert record.sweep_id in message and "c7g.xlarge" in message and record.members[1].run_id in message
    assert f"`campaign status {record.sweep_id}`" in message


def test_stop_on_failure_stops_and_resume_runs_the_types_not_reached(toy):
    target = FakeTarget(toy["repo"], toy["store"], fail={"c7i.xlarge"})
    with pytest.raises(StageFailed, match="--stop-on-failure stopped it"):
        sweep(toy, target, stop_on_failure=True)
    record, _ = stored(toy)
    assert target.ran() == ["c7i.xlarge"]
    assert [m.state for m in record.members] == [FAILED, PENDING, PENDING] and record.state == "stopped"
    again = FakeTarget(toy["repo"], toy["store"])
    book = SweepBook(record, open_store(toy["store"]), toy["state"])
    request = RunRequest(campaign_file=toy["repo"] / "campaign.yaml", store=toy["store"])
    with pytest.raises(StageFailed):  # the failed type stays failed: the sweep as a whole failed
        continue_sweep(again, request, book, toy["lines"].append)
    assert again.ran() == ["c7g.xlarge", "m7i.large"]  # the failed type is not run again
    assert [m.state for m in stored(toy)[0].members] == [FAILED, SUCCEEDED, SUCCEEDED]


def test_a_refused_preflight_runs_no_type(toy):
    target = FakeTarget(toy["repo"], toy["store"], refuse=True)
    with pytest.raises(PreflightRefused, match="fleet over the vCPU quota") as refused:
        sweep(toy, target)
    assert "c7i.xlarge, c7g.xlarge, m7i.large refused before any type ran" in str(refused.value)
    assert target.ran() == [] and len(target.preflights) == 1


def test_ctrl_c_stops_the_sweep_and_resume_reruns_the_interrupted_type_as_a_new_run(toy):
    target = FakeTarget(toy["repo"], toy["store"], interrupt={"c7g.xlarge"})
    with pytest.raises(KeyboardInterrupt):
        sweep(toy, target)
    record, _ = stored(toy)
    assert [m.state for m in record.members] == [SUCCEEDED, INTERRUPTED, PENDING] and record.state == INTERRUPTED
    interrupted, first = record.members[1].run_id, record.members[0].run_id
    assert [event for event, _, _ in target.events] == ["up", "down", "up", "down"]  # torn down on Ctrl-C too
    again = FakeTarget(toy["repo"], toy["store"])
    request = RunRequest(campaign_file=toy["repo"] / "campaign.yaml", store=toy["store"])
    continue_sweep(again, request, SweepBook(record, open_store(toy["store"]), toy["state"]), toy["lines"].append)
    assert again.downs == [interrupted]  # what the interrupted run left is brought down first
    assert again.ran() == ["c7g.xlarge", "m7i.large"]
    resumed, _ = stored(toy)
    assert resumed.state == SUCCEEDED and resumed.members[0].run_id == first
    assert resumed.members[1].superseded == [interrupted] and resumed.members[1].run_id not in (None, interrupted)


def test_status_of_a_sweep_shows_every_type_and_a_dead_driver(toy, capsys):
    target = FakeTarget(toy["repo"], toy["store"], fail={"m7i.large"})
    with pytest.raises(StageFailed):
        sweep(toy, target)
    record, _ = stored(toy)
    gone = subprocess.Popen(["true"])
    gone.wait()
    record.state, record.driver = "running", {"host": record.driver["host"], "pid": gone.pid}
    SweepBook(record, open_store(toy["store"]), toy["state"]).save()  # as a kill -9 leaves it
    code = main(["status", record.sweep_id[:24], "--store", toy["store"]])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"sweep {record.sweep_id}: dead" in out and f"`campaign resume {record.sweep_id}`" in out
    for member in record.members:
        assert member.instance_type in out and member.run_id in out and member.state in out
    assert "0.1785" in out and "cost so far: $" in out
    code = main(["status", record.sweep_id, "--store", toy["store"], "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and [m["state"] for m in document["members"]] == [SUCCEEDED, SUCCEEDED, FAILED]
    assert all(m["cost_usd"] is not None and m["cost_usd"] >= 0 for m in document["members"])


def test_the_local_target_refuses_instance_types(toy, capsys):
    code = main(["run", "--instance-types", "c7i.xlarge,c7g.xlarge"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--instance-types c7i.xlarge,c7g.xlarge" in err and "--target aws" in err
    assert not (toy["state"] / "sweeps").exists()
    code = main(["run", "--cluster", "c1", "--instance-types", "c7i.xlarge"])
    err = capsys.readouterr().err
    assert code == 2 and "--instance-types with --cluster c1" in err and "give --nodes N" in err, err


def test_resume_of_a_finished_sweep_says_there_is_nothing_left(toy, capsys):
    sweep(toy, FakeTarget(toy["repo"], toy["store"]))
    record, _ = stored(toy)
    code = main(["resume", record.sweep_id, "--store", toy["store"]])
    err = capsys.readouterr().err
    assert code == 2 and "has nothing left to run" in err and f"compare --sweep {record.sweep_id}" in err


def test_matrix_in_the_campaign_file(tmp_path: Path):
    path = tmp_path / "campaign.yaml"
    path.write_text(TOY_CAMPAIGN + "matrix:\n  instance_types: [c7i.xlarge, c7g.xlarge]\n")
    assert load_campaign(path).matrix_instance_types == ("c7i.xlarge", "c7g.xlarge")
    path.write_text(TOY_CAMPAIGN + "matrix:\n  instance_types: [c7i.xlarge, c7i.xlarge, 'big box']\n  nodes: 3\n")
    with pytest.raises(InputError) as bad:
        load_campaign(path)
    text = str(bad.value)
    lines = TOY_CAMPAIGN.count("\n")
    assert f"{path}:{lines + 2}: matrix: big box is not an EC2 instance type" in text
    assert f"{path}:{lines + 2}: matrix: c7i.xlarge listed twice" in text
    assert f"{path}:{lines + 3}: matrix: unknown key 'nodes'" in text


def test_instance_types_in_the_config_and_the_precedence(toy, tmp_path: Path, monkeypatch):
    from campaign.cli.sweep_commands import sweep_types

    config = tmp_path / "config.toml"
    config.write_text('[aws]\ninstance_types = ["m7i.large", "m7g.large"]\n')
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(config))
    campaign_file = toy["repo"] / "campaign.yaml"
    assert sweep_types((), None, campaign_file, "aws") == ("m7i.large", "m7g.large")  # the config
    assert sweep_types((), "t3.micro", campaign_file, "aws") == ()  # one type named: one run
    assert sweep_types((), None, campaign_file, "local") == ()  # a rehearsal ignores the matrix
    with_matrix = tmp_path / "matrix.yaml"
    with_matrix.write_text(TOY_CAMPAIGN + "matrix: {instance_types: [c7i.xlarge]}\n")
    assert sweep_types((), None, with_matrix, "aws") == ("c7i.xlarge",)  # the file over the config
    assert sweep_types(("a1.large",), None, with_matrix, "aws") == ("a1.large",)  # the command line over both
    with pytest.raises(InputError, match="named twice"):
        sweep_types(("a1.large", "a1.large"), None, with_matrix, "aws")


def test_a_store_not_writable_yet_gets_the_record_at_the_next_change(tmp_path: Path):
    """The bucket the first run creates does not exist when the sweep starts: the mirror holds the record,
    the message says so once, and the next change writes the store. (A folder store under a file stands in
    for the missing bucket: both are a StoreError on write.)"""
    from campaign.run.sweep import Member, SweepRecord

    blocker = tmp_path / "not-yet"
    blocker.write_text("a file where the store's folder will be")
    store = open_store(str(blocker / "store"))
    lines: list[str] = []
    record = SweepRecord("sweep-20261201T120000Z-abcdef0-0001", "c.yaml", None, "aws", "s", None, "t", [Member("a.b")])
    book = SweepBook(record, store, tmp_path / "state", lines.append)
    book.save()
    book.save()
    assert len(lines) == 1 and "the store cannot be written yet" in lines[0] and record.sweep_id in lines[0]
    assert read_sweep(store, tmp_path / "state", record.sweep_id).revision == 2  # from the mirror
    blocker.unlink()
    book.save()
    assert book.store_pending is None
    assert json.loads(store.get_bytes(record.keys.record))["revision"] == 3


def test_resume_is_refused_while_the_driving_process_lives(toy, capsys):
    target = FakeTarget(toy["repo"], toy["store"], interrupt={"c7g.xlarge"})
    with pytest.raises(KeyboardInterrupt):
        sweep(toy, target)
    record, _ = stored(toy)
    alive = subprocess.Popen(["sleep", "30"])
    try:
        record.state, record.driver = "running", {"host": record.driver["host"], "pid": alive.pid}
        SweepBook(record, open_store(toy["store"]), toy["state"]).save()
        code = main(["resume", record.sweep_id, "--store", toy["store"]])
        err = capsys.readouterr().err
        assert code == 3, err
        assert f"sweep {record.sweep_id} is being driven by pid {alive.pid}" in err and "--take-over" in err
    finally:
        alive.kill()
        alive.wait()
