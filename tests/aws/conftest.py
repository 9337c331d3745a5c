"""Fixtures for the AWS target's tests: a toy campaign repository pushed to a local bare remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.core.conftest import BENCH_PY, GEN_SH, TOY_CAMPAIGN, git, make_repo

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pushed_repo(tmp_path: Path) -> tuple[Path, Path]:
    """(repo, bare remote): the toy campaign committed and pushed to origin (a local bare repository)."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = make_repo(tmp_path / "repo", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH,
                                         "scripts/bench.py": BENCH_PY})
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    return repo, remote


@pytest.fixture(autouse=True)
def _restore_environment():
    """Auth.activate() puts credentials into os.environ (for Terraform, a child): undo it after each test."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
