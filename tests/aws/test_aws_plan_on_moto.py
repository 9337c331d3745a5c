"""`campaign plan --target aws` on moto with the real module: Terraform's own plan, the Terraform version
check, the warnings for a raised IMDS hop limit and for a credential in the clone URL (which never shows)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from campaign.cli.main import main
from campaign.targets.aws import checks
from tests.core.conftest import git

SECRET = "glpat-DoNotPrintMe0123456789"


@pytest.fixture
def planned_repo(pushed_repo, tf_moto, tmp_path: Path, monkeypatch):
    repo, _remote = pushed_repo
    bucket = f"plan-{uuid.uuid4().hex[:12]}"
    tf_moto.client("s3").create_bucket(Bucket=bucket)
    config = tmp_path / "config.toml"
    config.write_text(f'[aws]\nbucket = "{bucket}"\ninstance_type = "t3.micro"\nimds_hop_limit = 2\n')
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(config))
    monkeypatch.chdir(repo)
    tf_moto.override_workspaces(monkeypatch)
    git(repo, "remote", "set-url", "origin", f"https://oauth2:{SECRET}@git.example.invalid/team/bench.git")
    return repo


def test_plan_shows_terraforms_plan_and_the_warnings_without_the_credential(planned_repo, capsys):
    code = main(["plan", "sf0.01", "--target", "aws"])
    output = capsys.readouterr()
    text = output.out + output.err
    assert code == 0, text
    assert SECRET not in text
    assert "the instance clones https://git.example.invalid/team/bench.git" in text
    assert "WARN clone credentials: the repository URL carries a credential; it was removed" in text
    assert "WARN instance metadata: imds_hop_limit = 2: containers started by stages can reach IMDS" in text
    assert "ok   terraform: terraform 1." in text
    assert "ok   terraform plan: 6 to add, 0 to change, 0 to destroy" in text, text


def test_show_userdata_never_carries_the_credential(planned_repo, capsys):
    assert main(["plan", "--target", "aws", "--show-userdata"]) == 0
    script = capsys.readouterr().out
    assert "readonly REPO_URL=https://git.example.invalid/team/bench.git" in script
    assert SECRET not in script


def test_an_old_terraform_is_refused_with_the_version_needed(planned_repo, tmp_path: Path, monkeypatch, capsys):
    """A stand-in `terraform` (named fake) that reports 1.9.8, first on PATH."""
    stand_in = tmp_path / "bin" / "terraform"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/bash\necho '" + json.dumps({"terraform_version": "1.9.8"}) + "'\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}:{__import__('os').environ['PATH']}")
    code = main(["plan", "sf0.01", "--target", "aws"])
    text = capsys.readouterr().out
    assert code == 3, text
    assert (
        "FAIL terraform: terraform 1.9.8 is too old: terraform/versions.tf needs Terraform >= 1.11 "
        "(https://developer.hashicorp.com/terraform/install)"
    ) in text


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://oauth2:TOKEN@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://TOKEN@github.com/o/r.git", "https://github.com/o/r.git"),
        ("http://user:p%40ss@git.example.com:8080/o/r", "http://git.example.com:8080/o/r"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://github.com/o/r@v1.git", "https://github.com/o/r@v1.git"),  # an @ in the path is no credential
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_credentials_are_cut_from_urls(url, clean):
    assert checks.without_credentials(url) == clean


def test_a_configured_repo_url_loses_its_credential_too(pushed_repo):
    repo, _ = pushed_repo
    assert checks.remote_url(repo, "https://x:TOKEN@example.com/r.git") == "https://example.com/r.git"
    assert checks.had_credentials(repo, "https://x:TOKEN@example.com/r.git")
    assert not checks.had_credentials(repo, None)


@pytest.mark.parametrize(
    ("line", "refusal"),
    [
        ('prefix = "camp*"', "prefix 'camp*' may hold only letters"),
        ('prefix = "a//b"', "prefix 'a//b' may hold only letters"),
        ('prefix = "${aws:username}"', "prefix '${aws:username}' may hold only letters"),
        ("imds_hop_limit = 0", "imds_hop_limit 0 must be between 1 and 64"),
        ('repo_token_parameter = "arn:aws:ssm:*"', "repo_token_parameter 'arn:aws:ssm:*' is not an SSM parameter name"),
    ],
)
def test_settings_refuse_what_would_widen_the_role_before_terraform_sees_it(tmp_path: Path, monkeypatch, line, refusal):
    from campaign.errors import InputError
    from campaign.targets.aws.settings import load_settings

    (tmp_path / "config.toml").write_text(f"[aws]\n{line}\n")
    monkeypatch.setenv("CAMPAIGN_CONFIG", str(tmp_path / "config.toml"))
    with pytest.raises(InputError, match=re.escape(refusal)):
        load_settings(tmp_path)
    (tmp_path / "config.toml").write_text('[aws]\nprefix = "team/campaigns"\nimds_hop_limit = 2\n')
    assert load_settings(tmp_path).prefix == "team/campaigns"


def test_plan_shows_whether_a_cached_stage_is_fetched_from_the_buckets_cache(planned_repo, tmp_path, capsys):
    """The data cache on AWS lives in the results bucket (<prefix>/cache/<key>/): the plan looks it up there."""
    from tests.core.cache_helpers import CACHED_BENCH_PY, CACHED_CAMPAIGN, CACHED_GEN_SH

    for relative, text in {
        "campaign.yaml": CACHED_CAMPAIGN,
        "scripts/gen.sh": CACHED_GEN_SH,
        "scripts/bench.py": CACHED_BENCH_PY,
    }.items():
        (planned_repo / relative).write_text(text)
    git(planned_repo, "commit", "-qam", "a cached data stage")
    git(planned_repo, "push", "-q", str(tmp_path / "remote.git"), "main")  # origin's URL is the fixture's fake
    git(planned_repo, "update-ref", "refs/remotes/origin/main", "HEAD")

    assert main(["plan", "sf0.01", "--target", "aws", "--json"]) == 0
    printed = capsys.readouterr().out  # moto's in-process server prints about the Pricing API it lacks: skip that
    (gen,) = [r for r in json.loads(printed[printed.index("{\n") :])["stage_runs"] if r["id"] == "gen[sf0.01]"]
    assert re.fullmatch(r"generate \(cache key [0-9a-f]{12}.*\)", gen["cache"]), gen
