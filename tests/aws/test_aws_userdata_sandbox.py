"""The whole instance userdata (system setup included) executed by bash in a sandbox.

Stand-ins (named fakes: this machine is not an AL2023 instance and must not be changed): `aws`, `dnf`,
`rpm`, `systemctl`, `useradd`, `usermod`, `git`, `docker`, `python3.11` (which makes a venv whose `pip` and
`campaign` are stand-ins too) and the shutdown command are scripts on a sandboxed PATH that record their
arguments, one per line. Everything else (bash itself, coreutils, install, tee, python3 for the final
journal entry) is real, `touch` included: an injected `touch` would create its file.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from campaign.targets.aws.userdata import UserdataParams, render_userdata

STUBS = ("aws", "dnf", "systemctl", "useradd", "usermod", "docker")
RECORD = 'printf "%s\\n" "$(basename "$0")" "$@" "--" >> "$SANDBOX_CALLS"\n'


def hostile(name: str) -> str:
    """A value that runs `touch pwned-<name>-N` in the script's folder if the shell ever evaluates it."""
    return (
        f"v$(touch pwned-{name}-1)`touch pwned-{name}-2`'\";touch pwned-{name}-3;\n"
        f"touch pwned-{name}-4 #${{IFS}}$((1))|| touch pwned-{name}-5 & \\"
    )


def write_stub(folder: Path, name: str, body: str = "") -> None:
    path = folder / name
    path.write_text("#!/bin/bash\n" + RECORD + body)
    path.chmod(0o755)


def sandbox(tmp_path: Path, commit: str, missing_packages: str = "") -> dict[str, str]:
    """The stand-ins and an environment whose PATH starts with them."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in STUBS:
        write_stub(stubs, name)
    (tmp_path / "commit").write_text(commit)
    write_stub(
        stubs,
        "git",
        f'[ "$1" = init ] && mkdir -p "$3/.git"\n[ "$3" = rev-parse ] && cat {tmp_path / "commit"}\nexit 0\n',
    )
    write_stub(stubs, "rpm", 'for m in $SANDBOX_MISSING; do [ "$m" = "$2" ] && exit 1; done\nexit 0\n')
    write_stub(stubs, "recorder")  # the venv's pip and campaign
    write_stub(
        stubs,
        "python3.11",
        f'mkdir -p "$3/bin"\ncp {stubs}/recorder "$3/bin/pip"\ncp {stubs}/recorder "$3/bin/campaign"\n',
    )
    write_stub(stubs, "shutdown-stand-in")
    return {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SANDBOX_CALLS": str(tmp_path / "calls"),
        "SANDBOX_MISSING": missing_packages,
        "LANG": "C.UTF-8",
    }


def run_userdata(tmp_path: Path, params: UserdataParams, env: dict) -> subprocess.CompletedProcess:
    script = tmp_path / "userdata.sh"
    script.write_text(render_userdata(params))
    return subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def base_params(tmp_path: Path, **values) -> UserdataParams:
    return UserdataParams(
        run_id="r1",
        campaign="tpch",
        commit="a" * 40,
        repo_url="https://example.com/r.git",
        store_url="s3://bucket/prefix",
        region="eu-west-1",
        watchdog_minutes=60,
        bench_user=getpass.getuser(),
        work_root=str(tmp_path / "instance"),
        shutdown_command=str(tmp_path / "stubs" / "shutdown-stand-in"),
        profile_script=str(tmp_path / "profile.d-campaign.sh"),
        **values,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_hostile_values_in_every_setting_never_execute(tmp_path: Path):
    values = {
        name: hostile(name)
        for name in (
            "run_id",
            "campaign",
            "commit",
            "repo_url",
            "store_url",
            "region",
            "install_spec",
            "repo_token_parameter",
        )
    }
    work_root = tmp_path / f"w{hostile('work_root').replace('/', '_')}"
    params = replace(
        base_params(tmp_path, install_spec=values["install_spec"], repo_token_parameter=values["repo_token_parameter"]),
        run_id=values["run_id"],
        campaign=values["campaign"],
        commit=values["commit"],
        repo_url=values["repo_url"],
        store_url=values["store_url"],
        region=values["region"],
        work_root=str(work_root),
        watchdog_minutes=hostile("watchdog"),
    )  # type: ignore[arg-type]
    result = run_userdata(tmp_path, params, sandbox(tmp_path, values["commit"]))
    pwned = sorted(path.name for path in tmp_path.rglob("pwned-*"))
    assert pwned == [], f"injected commands ran: {pwned}\n{result.stdout}{result.stderr}"
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "calls").read_text()
    # Each value reached its command as one argument, byte for byte.
    assert f"\nfetch\n-q\n--depth\n1\norigin\n{values['commit']}\n--\n" in calls
    assert f"\n--name\n{values['repo_token_parameter']}\n" in calls
    assert f"\ninstall\n--quiet\n{values['install_spec']}\n--\n" in calls
    assert f"campaign\nagent\n{values['run_id']}\n--store\n{values['store_url']}\n" in calls
    log = (work_root / "logs" / "bootstrap.log").read_text()
    assert f"pip install {values['install_spec']})" in log  # the log line that once ran $(…)


def test_a_missing_optional_package_is_a_named_warning_not_the_end(tmp_path: Path):
    result = run_userdata(tmp_path, base_params(tmp_path), sandbox(tmp_path, "a" * 40, "perl-IPC-Cmd docker"))
    assert result.returncode == 0, result.stdout + result.stderr
    log = (tmp_path / "instance" / "logs" / "bootstrap.log").read_text()
    assert "WARNING: optional package(s) not installed: perl-IPC-Cmd docker" in log
    assert "the agent exited with 0" in log  # the run went on
    calls = (tmp_path / "calls").read_text()
    assert "systemctl" not in calls  # no docker: not enabled
    assert "\ndnf\ninstall\n-y\n-q\n--setopt=strict=0\npython3.11-pip\n" in "\n" + calls


def test_a_missing_required_package_ends_the_instance_with_its_step(tmp_path: Path):
    env = sandbox(tmp_path, "a" * 40)
    write_stub(Path(env["PATH"].split(":")[0]), "dnf", '[ "$4" = git ] && exit 1\nexit 0\n')
    result = run_userdata(tmp_path, base_params(tmp_path), env)
    assert result.returncode != 0
    log = (tmp_path / "instance" / "logs" / "bootstrap.log").read_text()
    assert "ended at step 'system setup'" in log
    assert "-h\nnow\n" in (tmp_path / "calls").read_text()  # and it still powers off
