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
    repo = make_repo(
        tmp_path / "repo", {"campaign.yaml": TOY_CAMPAIGN, "scripts/gen.sh": GEN_SH, "scripts/bench.py": BENCH_PY}
    )
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


@pytest.fixture(scope="session")
def tf_moto_session(s3_server: str, tmp_path_factory: pytest.TempPathFactory):
    """Terraform with the real hashicorp/aws provider, wired to the session's moto server (see
    tests/aws/tf_moto.py); skipped, with the reason shown, where no provider mirror exists."""
    from tests.aws.tf_moto import TfMoto, mirror_or_skip, write_cli_config

    mirror = mirror_or_skip()
    home = tmp_path_factory.mktemp("tf-moto")
    (home / "plugin-cache").mkdir()
    return TfMoto(
        endpoint=s3_server,
        cli_config=write_cli_config(home / "cli.tfrc", mirror),
        plugin_cache=home / "plugin-cache",
        mirror=mirror,
    )


@pytest.fixture
def tf_moto(tf_moto_session):
    """The session's TfMoto with its environment (TF_CLI_CONFIG_FILE, ...) set for this test."""
    with tf_moto_session.activated():
        yield tf_moto_session
