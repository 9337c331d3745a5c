"""Paths and subprocess helpers for the TPC-H stage tests (named uniquely: tests import it).

Subprocesses run with the test interpreter's bin directory first on PATH, which is how the runner
runs stages (the project venv's python and tpchgen-cli).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGE_DIR = REPO_ROOT / "stages" / "tpch"
QUERIES_DIR = STAGE_DIR / "queries"
SHIPPED_ANSWERS = STAGE_DIR / "answers"
# The TPC-H specification's SF 1 answer set, shipped with the project (a byte copy of the kit's).
OFFICIAL_ANSWERS = SHIPPED_ANSWERS / "sf1"
OFFICIAL_COLUMN_KINDS = SHIPPED_ANSWERS / "colprecision.txt"
QUERIES = tuple(f"q{number:02d}" for number in range(1, 23))
TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")


def load_stage_module(name: str):
    """Import stages/tpch/<name>.py under a private name (stage scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"tpch_stage_{name}", STAGE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def stage_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_generate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(STAGE_DIR / "generate.sh"), *args],
        cwd=REPO_ROOT,
        env=env or stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(STAGE_DIR / "bench.py"), *args],
        cwd=REPO_ROOT,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def generate_or_fail(sf: str, out: Path) -> Path:
    result = run_generate(sf, str(out))
    assert result.returncode == 0, f"generate.sh {sf} failed:\n{result.stdout}\n{result.stderr}"
    return out
