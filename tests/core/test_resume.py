"""Resume, lease, heartbeats and incremental sync on the local target (real processes, git, store)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, make_repo, run_cli
from .test_run_local import alive, final_states, journal, started

# bench fails until the file named by $TOY_FAIL_UNTIL exists: the "fix" is made outside the repo.
FLAKY_BENCH = BENCH_PY.replace(
    "data, results = sys.argv[1], sys.argv[2]",
    "data, results = sys.argv[1], sys.argv[2]\n"
    "if not os.path.exists(os.environ['TOY_FAIL_UNTIL']): sys.exit('not yet')",
)
# A bench that follows the incremental contract: with CAMPAIGN_RESUME=1 it skips recorded queries.
# After q1 it waits for the file $TOY_RELEASE, so a test can act while the stage runs.
WAITING_BENCH = """\
import json, os, sys, time
data, results = sys.argv[1], sys.argv[2]
if os.environ.get("TOY_PIDFILE"):
    open(os.environ["TOY_PIDFILE"], "w").write(str(os.getpid()))
done = set()
if os.environ.get("CAMPAIGN_RESUME") == "1":
    done = {json.loads(line)["query"] for line in open(results)}
os.makedirs(os.path.dirname(results), exist_ok=True)
with open(results, "a") as out:
    for q in ("q1", "q2", "q3"):
        if q in done:
            continue
        out.write(json.dumps({"query": q, "pid": os.getpid()}) + "\\n")
        out.flush()
        while q == "q1" and not os.path.exists(os.environ["TOY_RELEASE"]):
            time.sleep(0.05)
print("bench done")
"""


def toy(tmp_path: Path, bench: str = BENCH_PY) -> Path:
    return make_repo(
        tmp_path / "repo", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": bench}
    )


def env_with(**values: str) -> dict:
    import os

    return {**os.environ, **values}


def test_resume_keeps_verified_stage_runs_and_runs_the_rest(tmp_path: Path):
    repo = toy(tmp_path, FLAKY_BENCH)
    fixed = tmp_path / "fixed"
    env = env_with(TOY_FAIL_UNTIL=str(fixed))
    failed = run_cli(repo, "run", env=env)
    assert failed.returncode == 4
    run_id = started(failed)

    fixed.touch()
    plan = run_cli(repo, "plan", "--resume", run_id, "--json", env=env)
    actions = {r["id"]: (r["action"], r["reason"]) for r in json.loads(plan.stdout)["stage_runs"]}
    assert actions["gen[sf0.01]"] == ("done", "done, verified (2 recorded outputs and logs match)")
    assert actions["bench[sf0.01]"][0] == "run" and actions["report"][0] == "run"

    resumed = run_cli(repo, "resume", run_id, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == f"run: {run_id}"
    entries = journal(repo / ".campaign/store", run_id)
    running = [(e["stage_run"], e["attempt"]) for e in entries if e.get("state") == "running"]
    assert running == [("gen[sf0.01]", 1), ("bench[sf0.01]", 1), ("bench[sf0.01]", 2), ("report", 1)]
    assert final_states(entries) == {"gen[sf0.01]": "succeeded", "bench[sf0.01]": "succeeded", "report": "succeeded"}
    assert entries[-1]["state"] == "succeeded"
    verified = run_cli(repo, "verify", run_id, "--deep")
    assert verified.returncode == 0, verified.stderr
    manifest = json.loads((repo / f".campaign/store/runs/{run_id}/manifest.json").read_text())
    keys = {a["key"].split("/", 2)[2] for a in manifest["artifacts"]}
    assert {"logs/gen[sf0.01].log", "logs/bench[sf0.01].log", "logs/bench[sf0.01].attempt2.log"} <= keys


def test_a_done_stage_whose_stored_output_no_longer_verifies_runs_again(tmp_path: Path):
    repo = toy(tmp_path, FLAKY_BENCH)
    fixed = tmp_path / "fixed"
    env = env_with(TOY_FAIL_UNTIL=str(fixed))
    run_id = started(run_cli(repo, "run", env=env))
    stored = repo / f".campaign/store/runs/{run_id}/logs/gen[sf0.01].log"
    stored.write_text("tampered\n")
    fixed.touch()
    assert run_cli(repo, "resume", run_id, env=env).returncode == 0
    entries = journal(repo / ".campaign/store", run_id)
    invalidated = [e for e in entries if e.get("state") == "invalidated"]
    assert [e["stage_run"] for e in invalidated] == ["gen[sf0.01]"]
    assert "recorded output failed verification" in invalidated[0]["reason"]
    assert "gen[sf0.01].log" in invalidated[0]["reason"]
    superseded = repo / ".campaign/runs" / run_id / "superseded" / "gen[sf0.01].before-attempt2"
    assert (superseded / "data/sf0.01/table.txt").exists()  # the earlier output moved aside, not lost
    assert run_cli(repo, "verify", run_id, "--deep").returncode == 0


def start_waiting_run(repo: Path, release: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "campaign.cli", "run", *args],
        cwd=repo,
        env=env_with(TOY_RELEASE=str(release), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def test_interrupted_run_resumes_from_the_first_missing_record(tmp_path: Path):
    repo = toy(tmp_path, WAITING_BENCH)
    release = tmp_path / "release"
    process = start_waiting_run(repo, release, "--sync-interval", "0.2")
    run_id = process.stdout.readline().strip().removeprefix("run: ")
    results = repo / ".campaign/runs" / run_id / "outputs/results/sf0.01/toy.jsonl"
    stored = repo / ".campaign/store/runs" / run_id / "outputs/results/sf0.01/toy.jsonl"
    wait_for(stored)  # synced while the stage still runs
    assert stored.read_text().count("\n") == 1
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    status = json.loads(run_cli(repo, "status", run_id, "--json").stdout)
    assert status["state"] == "interrupted"

    release.touch()
    resumed = run_cli(repo, "run", "--resume", env=env_with(TOY_RELEASE=str(release)))
    assert resumed.returncode == 0, resumed.stderr
    assert started(resumed) == run_id
    bench = [e for e in journal(repo / ".campaign/store", run_id) if e.get("stage_run") == "bench[sf0.01]"]
    assert [e["state"] for e in bench] == ["running", "interrupted", "running", "succeeded"]
    assert bench[2]["resumed_records"] == 1
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["query"] for r in records] == ["q1", "q2", "q3"]  # q1 kept from before, not measured again
    assert records[0]["pid"] != records[1]["pid"]
    assert run_cli(repo, "verify", run_id).returncode == 0


def test_a_second_agent_on_the_same_run_is_refused(tmp_path: Path):
    repo = toy(tmp_path, WAITING_BENCH)
    release = tmp_path / "release"
    process = start_waiting_run(repo, release)
    run_id = process.stdout.readline().strip().removeprefix("run: ")
    wait_for(repo / ".campaign/store/runs" / run_id / "lease.json")
    second = run_cli(repo, "resume", run_id)
    assert second.returncode == 3
    assert f"run {run_id} is held by another agent (agent pid {process.pid} on {socket.gethostname()}" in second.stderr
    status = json.loads(run_cli(repo, "status", run_id, "--json").stdout)
    assert status["state"] == "running" and f"agent pid {process.pid}" in status["reason"]
    release.touch()
    assert process.wait(timeout=60) == 0
    assert not (repo / ".campaign/store/runs" / run_id / "lease.json").exists()  # released at the end


def watchdogs_of(pid: int) -> list[int]:
    """The stage watchdogs (campaign.system.process) that process pid started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (entry / "stat").exists():
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"getppid" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def test_a_killed_agent_is_reported_dead_and_its_leftover_stage_is_stopped_on_resume(tmp_path: Path):
    repo = toy(tmp_path, WAITING_BENCH)
    pid_file = tmp_path / "bench.pid"
    process = start_waiting_run(repo, tmp_path / "never-released", TOY_PIDFILE=str(pid_file))
    run_id = process.stdout.readline().strip().removeprefix("run: ")
    wait_for(repo / ".campaign/runs" / run_id / "outputs/results/sf0.01/toy.jsonl")
    watchdogs = watchdogs_of(process.pid)
    assert len(watchdogs) == 1
    os.kill(watchdogs[0], signal.SIGKILL)  # the watchdog gone too (test_stage_hygiene covers it doing its job)
    process.kill()  # kill -9: no handler runs, and the stage (its own session) keeps going
    process.wait()
    orphan = int(pid_file.read_text())
    assert alive(orphan)
    status = json.loads(run_cli(repo, "status", run_id, "--json").stdout)
    assert status["state"] == "dead"
    assert f"its agent (pid {process.pid} on this machine) is gone" in status["reason"]

    released = tmp_path / "released"
    released.touch()
    resumed = run_cli(repo, "resume", run_id, env=env_with(TOY_RELEASE=str(released)))
    assert resumed.returncode == 0, resumed.stderr
    assert "stopped a leftover stage process group of a dead agent" in resumed.stderr
    assert not alive(orphan)
    results = repo / ".campaign/runs" / run_id / "outputs/results/sf0.01/toy.jsonl"
    assert [json.loads(line)["query"] for line in results.read_text().splitlines()] == ["q1", "q2", "q3"]


def test_take_over_needs_a_stale_heartbeat_from_another_machine(tmp_path: Path):
    repo = toy(tmp_path, FLAKY_BENCH)
    fixed = tmp_path / "fixed"
    env = env_with(TOY_FAIL_UNTIL=str(fixed))
    run_id = started(run_cli(repo, "run", env=env))
    lease = repo / ".campaign/store/runs" / run_id / "lease.json"

    def fake_lease(age_s: float) -> None:  # an agent on another machine: cannot be checked from here
        now = time.time()
        lease.write_text(
            json.dumps(
                {
                    "agent": "elsewhere:4242:abc",
                    "host": "elsewhere",
                    "pid": 4242,
                    "acquired_at": "2026-01-01T00:00:00+00:00",
                    "heartbeat_at": "2026-01-01T00:00:00+00:00",
                    "heartbeat_epoch": now - age_s,
                }
            )
        )

    fixed.touch()
    fake_lease(30)
    refused = run_cli(repo, "resume", run_id, "--take-over", env=env)
    assert refused.returncode == 3
    assert "--take-over refused, the lease is alive (agent pid 4242 on elsewhere" in refused.stderr
    fake_lease(600)
    without = run_cli(repo, "resume", run_id, env=env)
    assert without.returncode == 3 and "resume with --take-over" in without.stderr
    taken = run_cli(repo, "resume", run_id, "--take-over", env=env)
    assert taken.returncode == 0, taken.stderr
    assert journal(repo / ".campaign/store", run_id)[-1]["state"] == "succeeded"


def test_a_changed_local_only_output_makes_its_stage_run_again(tmp_path: Path):
    campaign = TOY_CAMPAIGN.replace(
        '    produces: ["data/sf{{ sf }}"]\n', '    produces: ["data/sf{{ sf }}"]\n    upload: false\n'
    )
    repo = make_repo(
        tmp_path / "repo", {"campaign.yaml": campaign, "scripts/gen.sh": GEN_SH, "scripts/bench.py": FLAKY_BENCH}
    )
    fixed = tmp_path / "fixed"
    env = env_with(TOY_FAIL_UNTIL=str(fixed))
    run_id = started(run_cli(repo, "run", env=env))
    data = repo / ".campaign/runs" / run_id / "outputs/data/sf0.01/table.txt"
    assert not (repo / f".campaign/store/runs/{run_id}/outputs/data").exists()  # kept local only
    plan = json.loads(run_cli(repo, "plan", "--resume", run_id, "--json", env=env).stdout)
    assert plan["stage_runs"][0]["action"] == "done"
    data.write_text("sf=0.01 env_sf=0.01 but edited\n")
    fixed.touch()
    assert run_cli(repo, "resume", run_id, env=env).returncode == 0
    invalidated = [e for e in journal(repo / ".campaign/store", run_id) if e.get("state") == "invalidated"]
    assert [e["stage_run"] for e in invalidated] == ["gen[sf0.01]"]
    assert f"{data} changed since it was produced" in invalidated[0]["reason"]
    assert data.read_text() == "sf=0.01 env_sf=0.01\n"  # regenerated; the edited copy was moved aside
