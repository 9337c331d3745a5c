"""`campaign run` on the local target, end to end with real subprocesses, git and the folder store."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, make_repo, run_cli

FILES = {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": BENCH_PY}


def started(result: subprocess.CompletedProcess) -> str:
    first = result.stdout.splitlines()[0]
    assert first.startswith("run: "), result.stdout
    return first.removeprefix("run: ")


def journal(store: Path, run_id: str) -> list[dict]:
    return [json.loads(line) for line in (store / "runs" / run_id / "journal.jsonl").read_text().splitlines()]


def final_states(entries: list[dict]) -> dict[str, str]:
    return {e["stage_run"]: e["state"] for e in entries if e["kind"] == "stage"}


def alive(pid: int) -> bool:
    """A killed process may stay a zombie until init reaps it: that counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def repo_with(tmp_path: Path, campaign: str, **scripts: str) -> Path:
    files = {**FILES, "campaign.yaml": campaign}
    files.update({f"scripts/{name.replace('_', '.')}": text for name, text in scripts.items()})
    return make_repo(tmp_path / "repo", files)


def test_a_run_executes_in_order_stores_everything_and_verifies(toy_repo: Path):
    result = run_cli(toy_repo, "run", "sf0.01,sf1")
    assert result.returncode == 0, result.stderr
    run_id = started(result)
    store = toy_repo / ".campaign" / "store"
    run = store / "runs" / run_id

    entries = journal(store, run_id)
    assert [e["stage_run"] for e in entries if e.get("state") == "running"] == [
        "gen[sf0.01]",
        "bench[sf0.01]",
        "gen[sf1]",
        "bench[sf1]",
        "report",
    ]
    assert entries[-1]["kind"] == "run" and entries[-1]["state"] == "succeeded"
    assert [e["seq"] for e in entries] == list(range(len(entries)))

    assert (run / "outputs/results/sf1/toy.jsonl").read_text().count("\n") == 3
    assert (run / "outputs/data/sf1/table.txt").read_text() == "sf=1 env_sf=1\n"
    assert "bench done" in (run / "logs/bench[sf1].log").read_text()
    assert f"hello {run_id}" in (run / "logs/report.log").read_text()
    assert any('"event": "stage started"' in line for line in (run / "logs/runner.jsonl").read_text().splitlines())

    manifest = json.loads((run / "manifest.json").read_text())
    keys = {a["key"] for a in manifest["artifacts"]}
    assert f"runs/{run_id}/outputs/results/sf0.01/toy.jsonl" in keys
    assert f"runs/{run_id}/logs/gen[sf1].log" in keys
    for artifact in manifest["artifacts"]:
        path = store / artifact["key"]
        assert path.stat().st_size == artifact["size"]

    verified = run_cli(toy_repo, "verify", run_id, "--deep")
    assert verified.returncode == 0, verified.stderr
    assert f"verified: {len(keys)} artifacts of run {run_id} match the manifest" in verified.stdout
    local = toy_repo / ".campaign/runs" / run_id / "outputs"
    assert (
        f"results (stored in {run / 'outputs'}/):\n" in result.stdout and f"  {local / 'report.txt'}\n" in result.stdout
    )
    assert f"  {local / 'results/sf1/toy.jsonl'}\n" in result.stdout and "local copy" not in result.stdout


def test_status_logs_and_runs_read_the_store(toy_repo: Path):
    run_id = started(run_cli(toy_repo, "run"))
    status = run_cli(toy_repo, "status", run_id)
    assert status.returncode == 0
    assert f"run {run_id}: succeeded" in status.stdout
    assert "bench[sf0.01]  succeeded  1" in status.stdout
    document = json.loads(run_cli(toy_repo, "status", run_id, "--json").stdout)
    assert {s["id"]: s["state"] for s in document["stage_runs"]} == {
        "gen[sf0.01]": "succeeded",
        "bench[sf0.01]": "succeeded",
        "report": "succeeded",
    }

    log = run_cli(toy_repo, "logs", run_id, "bench[sf0.01]")
    assert log.returncode == 0 and "bench done" in log.stdout
    unknown = run_cli(toy_repo, "logs", run_id, "bench[sf7]")
    assert unknown.returncode == 2 and "has no stage run 'bench[sf7]'" in unknown.stderr

    second = started(run_cli(toy_repo, "run", "sf1"))
    runs = json.loads(run_cli(toy_repo, "runs", "--json").stdout)
    assert [r["run_id"] for r in runs] == sorted([run_id, second], reverse=True)
    assert {r["selection"] for r in runs} == {"sf0.01", "sf1"}
    assert all(r["state"] == "succeeded" for r in runs)


def test_a_failing_stage_stops_its_dependents_and_exits_4_naming_it(tmp_path: Path):
    repo = repo_with(tmp_path, TOY_CAMPAIGN, bench_py="import sys\nprint('about to fail')\nsys.exit(7)\n")
    result = run_cli(repo, "run", "sf0.01")
    assert result.returncode == 4
    run_id = started(result)
    assert "bench[sf0.01]: exited with code 7; log " in result.stderr
    assert "logs/bench[sf0.01].log" in result.stderr
    store = repo / ".campaign" / "store"
    states = final_states(journal(store, run_id))
    assert states == {"gen[sf0.01]": "succeeded", "bench[sf0.01]": "failed", "report": "skipped"}
    assert "about to fail" in (store / "runs" / run_id / "logs/bench[sf0.01].log").read_text()
    assert journal(store, run_id)[-1]["state"] == "failed"
    assert run_cli(repo, "verify", run_id).returncode == 0  # what was produced is stored and intact


def test_exit_0_without_the_declared_output_is_a_failure(tmp_path: Path):
    """The 'data not found, exit 0' trap: a stage that says it worked but produced nothing fails."""
    repo = repo_with(tmp_path, TOY_CAMPAIGN, gen_sh="#!/usr/bin/env bash\necho 'data not found'\nexit 0\n")
    result = run_cli(repo, "run", "sf0.01")
    assert result.returncode == 4
    assert "gen[sf0.01]: exited 0 but did not produce data/sf0.01 (declared in produces/incremental)" in result.stderr
    states = final_states(journal(repo / ".campaign/store", started(result)))
    assert states["bench[sf0.01]"] == "skipped"


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path):
    campaign = TOY_CAMPAIGN.replace(
        '    produces: ["data/sf{{ sf }}"]\n', '    produces: ["data/sf{{ sf }}"]\n    timeout: 2s\n', 1
    )
    pid_file = tmp_path / "grandchild.pid"
    slow = f"#!/usr/bin/env bash\nsleep 300 &\necho $! > {pid_file}\nwait\n"
    repo = repo_with(tmp_path, campaign, gen_sh=slow)
    began = time.monotonic()
    result = run_cli(repo, "run", "sf0.01")
    assert time.monotonic() - began < 60
    assert result.returncode == 4
    assert "gen[sf0.01]: timed out after 2s; its process group was stopped" in result.stderr
    assert not alive(int(pid_file.read_text()))


def test_keep_going_runs_independent_stage_runs_after_a_failure(tmp_path: Path):
    failing_for_sf1 = BENCH_PY.replace(
        "data, results = sys.argv[1], sys.argv[2]",
        "data, results = sys.argv[1], sys.argv[2]\nif os.environ['CAMPAIGN_SF'] == '1': sys.exit(3)",
    )
    repo = repo_with(tmp_path, TOY_CAMPAIGN, bench_py=failing_for_sf1)
    stopped = final_states(journal(repo / ".campaign/store", started(run_cli(repo, "run", "sf1,sf10"))))
    assert stopped["bench[sf1]"] == "failed" and stopped["gen[sf10]"] == "skipped"
    result = run_cli(repo, "run", "sf1,sf10", "--keep-going")
    assert result.returncode == 4
    states = final_states(journal(repo / ".campaign/store", started(result)))
    assert states == {
        "gen[sf1]": "succeeded",
        "bench[sf1]": "failed",
        "gen[sf10]": "succeeded",
        "bench[sf10]": "succeeded",
        "report": "skipped",
    }


def test_a_stage_whose_cpu_flag_is_missing_is_skipped_with_the_reason(tmp_path: Path):
    campaign = TOY_CAMPAIGN.replace("    kind: bench\n", "    kind: bench\n    requires: {cpu_flags: [no_such_flag]}\n")
    repo = repo_with(tmp_path, campaign)
    plan = run_cli(repo, "plan", "--json")
    actions = {r["id"]: (r["action"], r["reason"]) for r in json.loads(plan.stdout)["stage_runs"]}
    assert actions["bench[sf0.01]"] == ("skip", "host lacks CPU flag(s) no_such_flag required by bench")
    assert actions["report"] == ("skip", "needs bench[sf0.01], which will be skipped")
    result = run_cli(repo, "run")
    assert result.returncode == 0, result.stderr
    entries = journal(repo / ".campaign/store", started(result))
    skipped = {e["stage_run"]: e["reason"] for e in entries if e.get("state") == "skipped"}
    assert skipped["bench[sf0.01]"] == "host lacks CPU flag(s) no_such_flag required by bench"


def test_retries_give_each_attempt_its_own_log(tmp_path: Path):
    campaign = TOY_CAMPAIGN.replace("    needs: [gen]\n", "    needs: [gen]\n    retries: 1\n")
    flaky = BENCH_PY.replace(
        "data, results = sys.argv[1], sys.argv[2]",
        "data, results = sys.argv[1], sys.argv[2]\n"
        "marker = os.path.join(data, 'tried')\n"
        "if not os.path.exists(marker):\n    open(marker, 'w').close(); sys.exit('flaky first try')",
    )
    repo = repo_with(tmp_path, campaign, bench_py=flaky)
    result = run_cli(repo, "run")
    assert result.returncode == 0, result.stderr
    run_id = started(result)
    logs = repo / ".campaign/store/runs" / run_id / "logs"
    assert "flaky first try" in (logs / "bench[sf0.01].log").read_text()
    assert "bench done" in (logs / "bench[sf0.01].attempt2.log").read_text()
    attempts = [
        e["attempt"]
        for e in journal(repo / ".campaign/store", run_id)
        if e.get("stage_run") == "bench[sf0.01]" and e["state"] in ("failed", "succeeded")
    ]
    assert attempts == [1, 2]


def test_verify_detects_a_tampered_artifact(toy_repo: Path):
    run_id = started(run_cli(toy_repo, "run"))
    target = toy_repo / ".campaign/store/runs" / run_id / "outputs/results/sf0.01/toy.jsonl"
    target.write_text(target.read_text().replace("q2", "q9"))  # same size, different bytes
    result = run_cli(toy_repo, "verify", run_id, "--deep")
    assert result.returncode == 5
    assert "1 of " in result.stderr and "toy.jsonl has sha256" in result.stderr


def test_unknown_run_says_where_it_looked(toy_repo: Path):
    result = run_cli(toy_repo, "status", "20200101T000000Z-nope")
    assert result.returncode == 2
    assert "run 20200101T000000Z-nope is not in the store" in result.stderr


def test_runs_never_share_a_work_folder_or_overwrite_results(toy_repo: Path):
    first, second = started(run_cli(toy_repo, "run")), started(run_cli(toy_repo, "run"))
    assert first != second
    store = toy_repo / ".campaign/store/runs"
    assert (store / first / "outputs/results/sf0.01/toy.jsonl").exists()
    assert (store / second / "outputs/results/sf0.01/toy.jsonl").exists()


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_the_stage_records_interrupted_and_exits_130(tmp_path: Path, signal_name: str):
    import signal

    pid_file = tmp_path / "stage.pid"
    slow = f"#!/usr/bin/env bash\necho $$ > {pid_file}\nsleep 300\n"
    repo = repo_with(tmp_path, TOY_CAMPAIGN, gen_sh=slow)
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign.cli", "run"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(getattr(signal, signal_name))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    run_id = stdout.splitlines()[0].removeprefix("run: ")
    entries = journal(repo / ".campaign/store", run_id)
    assert entries[-1]["kind"] == "run" and entries[-1]["state"] == "interrupted"
    assert final_states(entries)["gen[sf0.01]"] == "interrupted"
    assert (repo / ".campaign/store/runs" / run_id / "logs/gen[sf0.01].log").exists()
    assert (repo / ".campaign/store/runs" / run_id / "manifest.json").exists()
    assert not alive(int(pid_file.read_text()))


def test_a_malformed_s3_address_is_bad_input(toy_repo: Path):
    result = run_cli(toy_repo, "runs", "--store", "s3://")
    assert result.returncode == 2
    assert "'s3://' is not an S3 store address: write s3://BUCKET or s3://BUCKET/PREFIX." in result.stderr


def test_a_journal_that_cannot_grow_is_a_store_error_naming_it(tmp_path: Path):
    script = (
        "import resource\n"
        "from pathlib import Path\n"
        "from campaign.run.journal import append_line\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))\n"
        f"path = Path({str(tmp_path / 'journal.jsonl')!r})\n"
        "for n in range(100):\n"
        '    append_line(path, \'{"seq": %d, "padding": "%s"}\' % (n, \'x\' * 40))\n'
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert f"StoreError: cannot append to the journal {tmp_path / 'journal.jsonl'}: File too large." in result.stderr
    lines = (tmp_path / "journal.jsonl").read_bytes().split(b"\n")
    assert all(json.loads(line) for line in lines[:-1])  # every complete entry is intact


def test_a_first_stage_writes_into_its_output_folders_without_creating_them(tmp_path: Path):
    campaign = (
        "name: first\nscale_factors: [1]\nstages:\n  - name: hello\n    kind: data\n"
        '    run: echo x > "$CAMPAIGN_OUTPUT_DIR/out.txt" && echo y > {{ output_dir }}/deep/er/y.txt\n'
        "    produces: [out.txt, deep/er/y.txt]\n"
    )
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": campaign})
    result = run_cli(repo, "run")
    assert result.returncode == 0, result.stderr
    outputs = repo / ".campaign/store/runs" / started(result) / "outputs"
    assert (outputs / "out.txt").read_text() == "x\n" and (outputs / "deep/er/y.txt").read_text() == "y\n"
