"""terraform/github-oidc: formatted, documented, and the role reaches only PREFIX/prebuilt/ of the bucket,
only from the repository's main branch. (Its checkov scan is the one over terraform/ in tests/aws.)"""

from __future__ import annotations

import subprocess

import hcl2

from tests.hcl import unquote

from .conftest import REPO_ROOT, tool

MODULE = REPO_ROOT / "terraform" / "github-oidc"


def blocks(name: str, kind: str) -> dict:
    with open(MODULE / name, encoding="utf-8") as handle:
        document = unquote(hcl2.load(handle))
    merged: dict = {}
    for entry in document.get(kind, []):
        for key, body in entry.items():  # `data "T" "a"` and `data "T" "b"` are two entries under T
            if isinstance(body, dict) and kind in ("data", "resource"):
                merged.setdefault(key, {}).update(body)
            else:
                merged[key] = body
    return merged


def statements(document: str) -> dict:
    return {s["sid"]: s for s in blocks("main.tf", "data")["aws_iam_policy_document"][document]["statement"]}


def test_terraform_fmt_is_clean():
    terraform = tool("terraform", install_hint="Terraform >= 1.5 on PATH")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-diff", "-recursive", str(MODULE)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_main_module_does_not_use_it():
    assert "github-oidc" not in "".join(p.read_text() for p in (REPO_ROOT / "terraform").glob("*.tf"))


def test_variables_are_documented_and_typed_and_outputs_name_the_role():
    variables = blocks("variables.tf", "variable")
    assert {"github_repository", "branch", "bucket", "prefix"} <= set(variables)
    for name, body in variables.items():
        assert body.get("description") and body.get("type"), f"variable {name} lacks a description or type"
    assert variables["branch"]["default"] == "main"
    outputs = blocks("outputs.tf", "output")
    assert outputs["role_arn"]["value"] == "${aws_iam_role.prebuild.arn}"
    assert all(body.get("description") for body in outputs.values())


def test_only_the_repositorys_main_branch_may_assume_the_role():
    local = blocks("main.tf", "locals")
    assert local["github_oidc_host"] == "token.actions.githubusercontent.com"
    assert local["subject"] == "repo:${var.github_repository}:ref:refs/heads/${var.branch}"
    trust = statements("assume_from_github")
    assert list(trust) == ["GitHubMainBranchOnly"]
    assert trust["GitHubMainBranchOnly"]["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"]: c for c in trust["GitHubMainBranchOnly"]["condition"]}
    assert conditions["${local.github_oidc_host}:sub"] == {
        "test": "StringEquals",
        "variable": "${local.github_oidc_host}:sub",
        "values": ["${local.subject}"],
    }
    assert conditions["${local.github_oidc_host}:aud"]["values"] == ["sts.amazonaws.com"]
    provider = blocks("main.tf", "resource")["aws_iam_openid_connect_provider"]["github"]
    assert provider["url"] == "https://${local.github_oidc_host}"


def test_the_role_may_only_get_put_and_list_the_prebuilt_prefix():
    assert blocks("main.tf", "locals")["prebuilt_prefix"] == "${var.prefix}/prebuilt/"
    bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"
    policy = statements("prebuilt_prefix")
    assert set(policy) == {"PrebuiltObjects", "ListPrebuiltPrefix"}
    assert policy["PrebuiltObjects"]["actions"] == ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    assert policy["PrebuiltObjects"]["resources"] == [f"{bucket_arn}/${{local.prebuilt_prefix}}*"]
    listing = policy["ListPrebuiltPrefix"]
    assert listing["actions"] == ["s3:ListBucket"] and listing["resources"] == [bucket_arn]
    assert listing["condition"] == [
        {"test": "StringLike", "variable": "s3:prefix", "values": ["${local.prebuilt_prefix}*"]}
    ]
    text = "".join(p.read_text() for p in MODULE.glob("*.tf"))
    assert "aws_iam_role_policy_attachment" not in text and '"s3:*"' not in text
