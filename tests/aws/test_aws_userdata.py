"""The rendered userdata: valid bash, shellcheck-clean, strict, and safe with shell variables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from campaign.targets.aws.userdata import TEMPLATE_DIR, UserdataParams, render_userdata

from .conftest import REPO_ROOT

PARAMS = UserdataParams(
    run_id="20261122T181500Z-1a2b3c4-k3f9",
    campaign="tpch",
    commit="a" * 40,
    repo_url="https://github.com/example/bench.git",
    store_url="s3://results/campaigns",
    region="eu-west-1",
    watchdog_minutes=480,
)
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def variants() -> list[UserdataParams]:
    from dataclasses import replace

    return [
        PARAMS,
        replace(
            PARAMS,
            system_setup=False,
            machine_control=False,
            install_spec="",
            campaign_command=("/usr/bin/python3", "-m", "campaign.cli"),
        ),
        replace(PARAMS, repo_url="https://example.com/it's a repo", store_url="s3://b/p q"),
    ]


@pytest.mark.parametrize("params", variants(), ids=["instance", "rehearsal", "odd-quoting"])
def test_rendered_userdata_passes_bash_n_and_shellcheck(tmp_path: Path, params: UserdataParams):
    script = tmp_path / "userdata.sh"
    script.write_text(render_userdata(params))
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    lint = subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "--severity=style", str(script)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_values_are_quoted_for_the_shell(tmp_path: Path):
    from dataclasses import replace

    script = render_userdata(replace(PARAMS, repo_url="https://example.com/it's $(reboot)"))
    assert "readonly REPO_URL='https://example.com/it'\"'\"'s $(reboot)'" in script


def test_shell_variables_survive_rendering():
    run_templates = [p for p in sorted(TEMPLATE_DIR.glob("*.j2")) if p.name != "cluster-node.sh.j2"]  # a run's
    sources = "".join(path.read_text() for path in run_templates)
    shell_references = set(re.findall(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:[%#@][^}]*)?\}", sources))
    assert {"${RUN_ID}", "${LOG}", "${BENCH_USER}", "${STORE_URL%/}"} <= shell_references
    script = render_userdata(PARAMS)
    for reference in shell_references:
        assert reference in script, f"{reference} was eaten by the template"


def test_strict_shape_set_euo_pipefail_once_never_toggled():
    script = render_userdata(PARAMS)
    assert script.count("set -euo pipefail") == 1
    assert script.splitlines()[0] == "#!/bin/bash"
    assert next(line for line in script.splitlines() if line and not line.startswith("#")) == "set -euo pipefail"
    assert not re.search(r"set\s+\+[a-z]*[eu]|set\s+\+o\s+(errexit|nounset|pipefail)", script)


def test_the_log_belongs_to_the_bench_user_before_any_tee():
    lines = render_userdata(PARAMS).splitlines()
    owned = next(
        i for i, line in enumerate(lines) if line.startswith('install -o "${BENCH_USER}"') and '"${LOG}"' in line
    )
    user_made = next(i for i, line in enumerate(lines) if "useradd" in line)
    first_tee_use = next(
        i
        for i, line in enumerate(lines)
        if re.search(r"\btee\b", line) and "log()" not in line and not line.lstrip().startswith("#")
    )
    first_log_call = next(i for i, line in enumerate(lines) if re.match(r"\s*log \"", line))
    assert user_made < owned < first_tee_use and owned < first_log_call


def test_instance_script_has_watchdog_system_setup_and_aws_check_first():
    script = render_userdata(PARAMS)
    aws_check = script.index("command -v aws")
    watchdog = script.index('shutdown -h "+${WATCHDOG_MINUTES}"')
    assert aws_check < watchdog < script.index("dnf install")
    assert "readonly WATCHDOG_MINUTES=480" in script
    required = re.search(r"REQUIRED_PACKAGES=\(([^)]*)\)", script).group(1).split()
    optional = re.search(r"OPTIONAL_PACKAGES=\(([^)]*)\)", script).group(1).split()
    assert {"git", "gcc", "gcc-c++", "make", "python3.11"} <= set(required)
    assert {"cmake", "perl-FindBin", "perl-IPC-Cmd", "perl-File-Compare", "perl-File-Copy", "docker"} <= set(optional)
    assert 'dnf install -y -q "${REQUIRED_PACKAGES[@]}"' in script  # under set -e: a failure ends the script
    assert 'dnf install -y -q --setopt=strict=0 "${OPTIONAL_PACKAGES[@]}" >>"${LOG}" 2>&1 || true' in script
    assert "export OPENSSL_NO_VENDOR=1" in script
    assert 'usermod -aG docker "${BENCH_USER}"' in script
    assert "readonly INSTALL_SPEC='.[tpch]'" in script
    assert '"${VENV}/bin/pip" install --quiet "${INSTALL_SPEC}")' in script
    assert "shopt -s nullglob" in script


def test_rehearsal_script_never_powers_off_or_installs():
    rehearsal = variants()[1]
    script = render_userdata(rehearsal)
    assert "shutdown" not in script.replace("power-off", "")  # the comment words aside, no command
    assert "dnf" not in script and "pip install" not in script
    assert "CAMPAIGN=(/usr/bin/python3 -m campaign.cli)" in script


def test_templates_are_strict_about_unknown_names(tmp_path: Path):
    (tmp_path / "userdata.sh.j2").write_text("echo {{ not_a_setting }}\n")
    with pytest.raises(jinja2.UndefinedError):
        render_userdata(PARAMS, template_dir=tmp_path)


def test_show_userdata_prints_the_script_without_credentials(pushed_repo, tmp_path: Path):
    repo, remote = pushed_repo
    result = subprocess.run(
        [sys.executable, "-m", "campaign.cli", "plan", "--target", "aws", "--show-userdata"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#!/bin/bash\n")
    assert f"readonly REPO_URL={remote}" in result.stdout
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert f"readonly COMMIT={commit}" in result.stdout
    script = tmp_path / "shown.sh"
    script.write_text(result.stdout)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_the_templates_folder_is_the_repositorys():
    assert TEMPLATE_DIR == REPO_ROOT / "userdata"


def test_every_interpolation_in_the_templates_is_shell_quoted():
    """The sandbox test (test_aws_userdata_sandbox.py) runs hostile values; this catches a new template line."""
    for path in sorted(TEMPLATE_DIR.glob("*.j2")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for expression in re.findall(r"\{\{(.*?)\}\}", line):
                assert "shq" in expression, f"{path.name}:{number} interpolates {expression.strip()!r} unquoted"
