"""--var on plan and run, run ids by prefix and `latest`, and the host fingerprint in run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaign.errors import InputError
from campaign.run.resolve import resolve_run_id
from campaign.store import open_store
from campaign.system import host

from .conftest import run_cli


def test_plan_shows_a_var_set_on_the_command_line(toy_repo: Path):
    result = run_cli(toy_repo, "plan", "--var", "greeting=bonjour")
    assert result.returncode == 0, result.stderr
    assert "vars: greeting=bonjour (--var)" in result.stdout
    document = json.loads(run_cli(toy_repo, "plan", "--json", "--var", "greeting=hi").stdout)
    assert document["vars"] == {"greeting": "hi"} and document["vars_overridden"] == ["greeting"]


@pytest.mark.parametrize("command", ["plan", "run"])
def test_an_undeclared_var_is_refused_listing_the_declared_ones(toy_repo: Path, command: str):
    result = run_cli(toy_repo, command, "--var", "greting=x")
    assert result.returncode == 2
    assert "--var greting: not declared in campaign.yaml's vars" in result.stderr
    assert "Declared: greeting (default 'hello')" in result.stderr


def test_a_var_without_a_value_is_refused(toy_repo: Path):
    result = run_cli(toy_repo, "plan", "--var", "greeting")
    assert result.returncode == 2 and "write NAME=VALUE" in result.stderr


def test_run_records_the_vars_the_stages_use_and_the_host(toy_repo: Path, tmp_path: Path):
    store = tmp_path / "store"
    result = run_cli(toy_repo, "run", "--store", str(store), "--var", "greeting=bonjour")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].removeprefix("run: ")
    record = json.loads((store / "runs" / run_id / "run.json").read_text())
    assert record["vars"] == {"greeting": "bonjour"}
    assert {"cpu_model", "cores", "memory_gb", "kernel", "os", "cpu_flags"} <= set(record["host"])
    log = run_cli(toy_repo, "logs", run_id, "report", "--store", str(store))
    assert f"bonjour {run_id}" in log.stdout  # the agent rendered the command with the recorded value


def test_run_ids_by_prefix_and_latest(tmp_path: Path):
    store = open_store(str(tmp_path / "store"))
    for run_id in ("20261201T100000Z-aaaaaaa-0001", "20261201T110000Z-bbbbbbb-0002", "20261201T110000Z-bbbbbbb-0003"):
        store.put_bytes(b"{}", f"runs/{run_id}/run.json")
    assert resolve_run_id(store, "latest") == "20261201T110000Z-bbbbbbb-0003"
    assert resolve_run_id(store, "20261201T10") == "20261201T100000Z-aaaaaaa-0001"
    with pytest.raises(InputError, match="matches 2 runs"):
        resolve_run_id(store, "20261201T110000Z")
    with pytest.raises(InputError, match="is not in the store"):
        resolve_run_id(store, "2027")


def test_status_takes_a_prefix_and_latest(toy_repo: Path, tmp_path: Path):
    store = tmp_path / "store"
    run_id = run_cli(toy_repo, "run", "--store", str(store)).stdout.splitlines()[0].removeprefix("run: ")
    for text in (run_id[:18], "latest"):
        status = run_cli(toy_repo, "status", text, "--store", str(store), "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["run"]["run_id"] == run_id


def test_old_run_json_without_the_new_fields_still_reads():
    from campaign.run.record import RunRecord

    old = {
        "run_id": "r",
        "campaign": "c",
        "campaign_file": "campaign.yaml",
        "campaign_digest": "d",
        "commit": "x",
        "dirty": False,
        "selection": "sf1",
        "target": "local",
        "store": "s",
        "created_at": "t",
    }
    record = RunRecord.from_bytes(json.dumps(old).encode())
    assert (record.vars, record.host, record.sides, record.order_seed) == ({}, {}, {}, None)


def test_the_metadata_service_is_asked_only_on_ec2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("contacted the instance metadata service off EC2")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    laptop = tmp_path / "dmi"
    laptop.mkdir()
    (laptop / "sys_vendor").write_text("LENOVO\n")
    found = host.fingerprint(dmi=laptop)
    assert "instance_type" not in found and found["cores"] >= 1
    assert host.fingerprint(dmi=tmp_path / "absent")["kernel"]
    ec2 = tmp_path / "ec2"
    ec2.mkdir()
    (ec2 / "sys_vendor").write_text("Amazon EC2\n")
    assert host.on_ec2(ec2) and not host.on_ec2(laptop)
