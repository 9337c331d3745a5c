"""terraform/: formatted, in step with the Python side (python-hcl2), the properties the issue demands,
and checkov-clean except skips that carry a reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import hcl2
import pytest

from campaign.targets.aws import infra
from campaign.targets.aws.settings import AwsSettings
from tests.hcl import unquote

from .conftest import REPO_ROOT

MODULE = REPO_ROOT / "terraform"
CHECKOV = Path(os.environ.get("CAMPAIGN_CHECKOV") or REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov")


def parse(name: str) -> dict:
    with open(MODULE / name, encoding="utf-8") as handle:
        return unquote(hcl2.load(handle))


def blocks(document: dict, kind: str) -> dict:
    merged: dict = {}
    for entry in document.get(kind, []):  # two blocks of one type (two policy documents) merge, not replace
        for name, body in entry.items():
            merged.setdefault(name, {}).update(body)
    return merged


def resource(kind: str, name: str) -> dict:
    for path in sorted(MODULE.glob("*.tf")):
        found = blocks(parse(path.name), "resource").get(kind, {}).get(name)
        if found is not None:
            return found
    raise AssertionError(f"no resource {kind}.{name} in {MODULE}")


def test_terraform_fmt_is_clean():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-recursive", str(MODULE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_variables_are_exactly_what_the_python_side_passes_and_all_documented():
    declared = blocks(parse("variables.tf"), "variable")
    passed = infra.module_variables(
        AwsSettings(bucket="b"),
        run_id="r",
        campaign="c",
        commit="0" * 40,
        user_data="#!/bin/bash\n",
        create_bucket=False,
    )
    assert set(passed) == set(declared)
    for name, body in declared.items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"


def test_outputs_include_everything_the_python_side_reads():
    declared = blocks(parse("outputs.tf"), "output")
    assert set(infra.OUTPUTS_READ) <= set(declared)
    assert all(body.get("description") for body in declared.values())


def test_instance_properties():
    instance = resource("aws_instance", "runner")
    assert instance["instance_initiated_shutdown_behavior"] == "terminate"
    assert instance["user_data_replace_on_change"] is True
    assert instance["user_data"] == "${var.user_data}"  # a string from Python, never templatefile()
    metadata = instance["metadata_options"][0]
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == "${var.imds_hop_limit}"
    assert blocks(parse("variables.tf"), "variable")["imds_hop_limit"]["default"] == 1
    root = instance["root_block_device"][0]
    assert root["volume_type"] == "gp3" and root["encrypted"] is True
    assert root["volume_size"] == "${var.root_volume_gb}"
    assert "key_name" not in instance, "no SSH keys: access is SSM only"
    assert "spot" in json.dumps(instance["dynamic"])
    ami = blocks(parse("main.tf"), "data")["aws_ssm_parameter"]["al2023"]
    assert (
        "/aws/service/ami-amazon-linux-latest/al2023"
        in blocks(parse("variables.tf"), "variable")["ami_ssm_parameter_prefix"]["default"]
    )
    assert "ami_ssm_parameter_prefix" in ami["name"]


def test_security_group_has_no_inbound_rule():
    group = resource("aws_security_group", "runner")
    assert "ingress" not in group
    text = "".join(p.read_text() for p in MODULE.glob("*.tf"))
    assert "aws_security_group_rule" not in text and "aws_vpc_security_group_ingress_rule" not in text


def test_the_instance_role_is_limited_to_the_runs_prefix():
    text = (MODULE / "iam.tf").read_text()
    assert "${var.bucket}/${local.run_prefix}*" in text
    assert '"s3:*"' not in text and "AmazonS3FullAccess" not in text
    assert "AmazonSSMManagedInstanceCore" in text
    main = (MODULE / "main.tf").read_text()
    assert 'run_prefix = "${local.key_prefix}runs/${var.run_id}/"' in main


def test_the_bucket_is_versioned_encrypted_and_private_and_python_keeps_it():
    assert resource("aws_s3_bucket_versioning", "results")["versioning_configuration"][0]["status"] == "Enabled"
    sse = resource("aws_s3_bucket_server_side_encryption_configuration", "results")
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    block = resource("aws_s3_bucket_public_access_block", "results")
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    bucket_resources = [f"{kind}.results[0]" for kind in blocks(parse("bucket.tf"), "resource")]
    assert sorted(infra.bucket_addresses(bucket_resources + ["aws_instance.runner[0]"])) == sorted(bucket_resources)


def test_checkov_passes_with_reasoned_skips_only():
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed at {CHECKOV}: `make {CHECKOV.relative_to(REPO_ROOT)}` installs it "
            "in its own venv (its pins clash with ours)"
        )
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(MODULE),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["failed"] == 0, json.dumps(report["results"].get("failed_checks"), indent=1)[:4000]
    assert report["summary"]["passed"] > 30
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+)(:?)(.*)", "".join(p.read_text() for p in MODULE.glob("*.tf")))
    assert skips
    for check, colon, reason in skips:
        assert colon and len(reason.strip()) > 20, f"checkov skip {check} has no written reason"


# The instance role's S3 policy, evaluated: the HCL templates of iam.tf with the locals of main.tf and
# iam.tf filled in for a given store prefix, then IAM's matching (* and ? wildcards, StringLike on
# s3:prefix). Only Allow statements exist in the document, so "allowed" means some statement matches.

BUCKET = "campaign-results"
RUN_ID = "r-20240101-abc"
SHA = "0123456789abcdef0123456789abcdef01234567"
PREBUILT_OBJECTS = ("target.tar.gz", "target.tar.gz.sha256", "target.json")
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")


def locals_() -> dict:
    merged = {}
    for path in sorted(MODULE.glob("*.tf")):
        for entry in parse(path.name).get("locals", []):
            merged.update(entry)
    return merged


def run_prefix_statements() -> list[dict]:
    return blocks(parse("iam.tf"), "data")["aws_iam_policy_document"]["run_prefix"]["statement"]


def statement(sid: str) -> dict:
    found = [s for s in run_prefix_statements() if s.get("sid") == sid]
    assert len(found) == 1, f"expected one statement {sid}, found {len(found)}"
    return found[0]


def expand(template: str, values: dict) -> str:
    def value(match):
        assert match.group(1) in values, f"unexpected reference ${{{match.group(1)}}} in {template!r}"
        return values[match.group(1)]

    return re.sub(r"\$\{([^}]+)\}", value, template)


def references(key_prefix: str) -> dict:
    """What the policy's templates refer to; key_prefix stands for main.tf's conditional (tested below)."""
    values = {
        "data.aws_partition.current.partition": "aws",
        "var.bucket": BUCKET,
        "var.run_id": RUN_ID,
        "local.key_prefix": key_prefix,
    }
    declared = locals_()
    for name in ("run_prefix", "prebuilt_prefix", "cache_prefix"):
        values[f"local.{name}"] = expand(declared[name], values)
    return values


def iam_like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def allowed(action: str, resource: str, key_prefix: str, s3_prefix: str | None = None) -> bool:
    values = references(key_prefix)
    for body in run_prefix_statements():
        assert body.get("effect", "Allow") == "Allow" and "not_actions" not in body and "not_resources" not in body
        if not any(iam_like(a, action) for a in body["actions"]):
            continue
        if not any(iam_like(expand(r, values), resource) for r in body["resources"]):
            continue
        conditions = body.get("condition", [])
        for condition in conditions:
            assert condition["variable"] == "s3:prefix" and condition["test"] in ("StringLike", "StringEquals"), (
                f"the test's evaluator does not know condition {condition}"
            )
        if all(
            s3_prefix is not None
            and any(
                iam_like(expand(v, values), s3_prefix) if c["test"] == "StringLike" else expand(v, values) == s3_prefix
                for v in c["values"]
            )
            for c in conditions
        ):
            return True
    return False


def object_arn(key: str) -> str:
    return f"arn:aws:s3:::{BUCKET}/{key}"


BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
KEY_PREFIXES = ("campaign/", "")  # main.tf: trim(prefix, "/") + "/", or "" for an empty prefix


def prebuilt_keys(key_prefix: str) -> list[str]:
    return [f"{key_prefix}prebuilt/{SHA}/{name}" for name in PREBUILT_OBJECTS] + [f"{key_prefix}prebuilt/latest.json"]


def test_the_prebuilt_prefix_is_under_the_store_prefix():
    assert locals_()["prebuilt_prefix"] == "${local.key_prefix}prebuilt/"
    assert locals_()["key_prefix"] == '${var.prefix == "" ? "" : "${trim(var.prefix, "/")}/"}'
    assert references("campaign/")["local.prebuilt_prefix"] == "campaign/prebuilt/"
    assert references("")["local.prebuilt_prefix"] == "prebuilt/"


@pytest.mark.parametrize("key_prefix", KEY_PREFIXES)
def test_the_instance_role_can_read_and_list_the_prebuilt_tarballs(key_prefix):
    for key in prebuilt_keys(key_prefix):
        assert allowed("s3:GetObject", object_arn(key), key_prefix), key
    for listed in (f"{key_prefix}prebuilt/", f"{key_prefix}prebuilt/{SHA}/", f"{key_prefix}prebuilt/latest.json"):
        assert allowed("s3:ListBucket", BUCKET_ARN, key_prefix, s3_prefix=listed), listed
    # Listing stays inside prebuilt/ (and the run's own prefix): not the store, not other runs.
    for listed in (None, "", key_prefix, f"{key_prefix}runs/", f"{key_prefix}runs/other-run/", f"{key_prefix}prebuilt"):
        assert not allowed("s3:ListBucket", BUCKET_ARN, key_prefix, s3_prefix=listed), listed
    assert not allowed("s3:GetObject", object_arn(f"{key_prefix}runs/other-run/run.json"), key_prefix)


@pytest.mark.parametrize("key_prefix", KEY_PREFIXES)
def test_the_instance_role_cannot_write_or_delete_the_prebuilt_tarballs(key_prefix):
    for key in prebuilt_keys(key_prefix) + [f"{key_prefix}prebuilt/{SHA}/other"]:
        for action in WRITE_ACTIONS:
            assert not allowed(action, object_arn(key), key_prefix), (action, key)
    # ... while the run's own prefix stays writable.
    for action in WRITE_ACTIONS + ("s3:GetObject",):
        assert allowed(action, object_arn(f"{key_prefix}runs/{RUN_ID}/journal.jsonl"), key_prefix), action


@pytest.mark.parametrize("key_prefix", KEY_PREFIXES)
def test_the_instance_role_reads_writes_and_lists_the_data_cache_and_nothing_beside_it(key_prefix):
    """A `cache: true` stage on an instance fetches cache/<key>/, or stores it (a refused entry is replaced)."""
    assert locals_()["cache_prefix"] == "${local.key_prefix}cache/"
    entry = f"{key_prefix}cache/{SHA}"
    for action in WRITE_ACTIONS + ("s3:GetObject",):
        for key in (f"{entry}/manifest.json", f"{entry}/files/data/sf1/lineitem.parquet"):
            assert allowed(action, object_arn(key), key_prefix), (action, key)
    assert allowed("s3:ListBucket", BUCKET_ARN, key_prefix, s3_prefix=f"{entry}/")
    for key in (f"{key_prefix}cache", f"{key_prefix}cachex/y", f"{key_prefix}runs/other-run/cache/x"):
        assert not allowed("s3:PutObject", object_arn(key), key_prefix), key
    assert not allowed("s3:ListBucket", BUCKET_ARN, key_prefix, s3_prefix=f"{key_prefix}cachex/")


def test_the_prebuilt_statements_are_read_only_and_the_write_statement_is_the_runs_prefix_only():
    bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"
    read = statement("ReadPrebuilt")
    assert read["actions"] == ["s3:GetObject"]
    assert read["resources"] == [f"{bucket_arn}/${{local.prebuilt_prefix}}*"]
    assert "condition" not in read
    listing = statement("ListPrebuilt")
    assert listing["actions"] == ["s3:ListBucket"]
    assert listing["resources"] == [bucket_arn]
    assert listing["condition"] == [
        {"test": "StringLike", "variable": "s3:prefix", "values": ["${local.prebuilt_prefix}*"]}
    ]
    writes = [
        s
        for s in run_prefix_statements()
        if any(iam_like(pattern, action) for pattern in s["actions"] for action in WRITE_ACTIONS)
    ]
    assert [s["sid"] for s in writes] == ["RunObjects", "CacheObjects"]
    assert statement("RunObjects")["resources"] == [f"{bucket_arn}/${{local.run_prefix}}*"]
    assert statement("CacheObjects")["resources"] == [f"{bucket_arn}/${{local.cache_prefix}}*"]
    for body in run_prefix_statements():
        if any("prebuilt" in r for r in body["resources"]) or "prebuilt" in json.dumps(body.get("condition")):
            assert set(body["actions"]) <= {"s3:GetObject", "s3:ListBucket"}, body
