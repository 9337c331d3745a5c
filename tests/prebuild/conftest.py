"""Paths and tool lookups shared by the prebuild tests (issue 5: prebuilt target tarballs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "rust-workspace"
VENV_BIN = Path(sys.executable).parent


def tool(name: str, *, install_hint: str) -> str:
    """The tool beside this Python, else on PATH; the test is skipped, with the reason, when neither has it."""
    beside_python = VENV_BIN / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed ({install_hint})")
    return found


def cargo_env(**extra: str) -> dict[str, str]:
    """This environment (with the session's sandboxed AWS settings) for cargo and campaign, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO_TARGET_DIR", "CAMPAIGN_", "RUSTFLAGS"))}
    return {**env, "CARGO_NET_OFFLINE": "true", "CARGO_TERM_COLOR": "never", **extra}


def fixture_repo(tmp_path: Path) -> Path:
    """The fixture's files (no build output) committed in a fresh git repository."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURE, repo, ignore=shutil.ignore_patterns("target", ".campaign"))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "rust fixture"]):
        subprocess.run(git + command, cwd=repo, check=True, capture_output=True, timeout=60)
    return repo


def campaign(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI in repo, its state in repo/.campaign; env: another base than cargo_env() (e.g. cargo off PATH)."""
    env = {**(env if env is not None else cargo_env()), "CAMPAIGN_HOME": str(repo / ".campaign")}
    return subprocess.run(
        [str(VENV_BIN / "campaign"), *args], cwd=repo, env=env, check=False, capture_output=True, text=True, timeout=300
    )
