"""terraform/ applied for real: the real terraform CLI and hashicorp/aws provider against moto's server.

Three runs' worth of infrastructure, applied at once (tf_moto.apply_in_parallel) and destroyed by the last
test: a spot run whose state lives in S3 (state_backend, use_lockfile; with a private repository's token
parameter and imds_hop_limit 2), a run on an existing bucket, and a run with subnet_id in a non-default VPC
(which creates its bucket, with its TLS-only policy and lifecycle rules). The default run, which creates its bucket, is the whole `campaign run` of
test_aws_run_on_moto.py. What moto cannot show: that the instance boots, that IMDS enforces the hop
limit, that the egress rule blocks traffic, and that S3 refuses plain HTTP (it does not evaluate bucket
policies on requests); those need infra-validation/ on a real account.
"""

from __future__ import annotations

import json
import uuid

import pytest

from campaign.targets.aws import infra
from campaign.targets.aws.settings import AwsSettings
from tests.aws.tf_moto import apply_in_parallel, destroy_in_parallel

TOKEN_PARAMETER = "/campaign/test-repo-token"


def variables(run_id: str, settings: AwsSettings, *, create_bucket: bool = False) -> dict:
    return infra.module_variables(
        settings,
        run_id=run_id,
        campaign="toy",
        commit="c" * 40,
        user_data="#!/bin/bash\necho instance\n",
        create_bucket=create_bucket,
    )


def private_subnet(ec2) -> tuple[str, str]:
    """A subnet in a new, non-default VPC: (vpc id, subnet id)."""
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    return vpc, subnet


@pytest.fixture(scope="module")
def applied(tf_moto_session, tmp_path_factory):
    harness = tf_moto_session
    with harness.activated():
        s3, ec2 = harness.client("s3"), harness.client("ec2")
        bucket, state_bucket = f"results-{uuid.uuid4().hex[:12]}", f"tfstate-{uuid.uuid4().hex[:12]}"
        created = f"created-{uuid.uuid4().hex[:12]}"  # the subnet run creates it, with its TLS-only policy
        s3.create_bucket(Bucket=bucket)
        s3.create_bucket(Bucket=state_bucket)
        vpc, subnet = private_subnet(ec2)
        base = AwsSettings(bucket=bucket, prefix="campaigns", instance_type="t3.micro")
        # Three applies cover the five cases: each costs about a minute of CPU on two cores.
        variants = {
            "spot-state-backend": (
                variables(
                    "run-state",
                    AwsSettings(
                        bucket=bucket,
                        prefix="campaigns",
                        spot=True,
                        instance_type="t3.micro",
                        imds_hop_limit=2,
                        repo_token_parameter=TOKEN_PARAMETER,
                    ),
                ),
                f"s3://{state_bucket}/tfstate",
            ),
            "existing-bucket": (variables("run-existing", base), None),
            "subnet": (
                variables(
                    "run-subnet",
                    AwsSettings(bucket=created, prefix="campaigns", instance_type="t3.micro", subnet_id=subnet),
                    create_bucket=True,
                ),
                None,
            ),
        }
        done = apply_in_parallel(harness, tmp_path_factory.mktemp("module-on-moto"), variants)
        yield {
            "runs": done,
            "bucket": bucket,
            "state_bucket": state_bucket,
            "created_bucket": created,
            "vpc": vpc,
            "subnet": subnet,
            "harness": harness,
        }
        destroy_in_parallel([run for run in done.values() if run.runner.state_list()])  # after a failure


def instance(harness, applied_run) -> dict:
    (instance_id,) = applied_run.outputs["instance_ids"]
    reservations = harness.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]


def group_of(harness, applied_run) -> dict:
    """The run's security group (moto lists it on the instance's network interface)."""
    (group,) = [e.split(" ")[2] for e in harness.tagged(applied_run.variables["run_id"]) if e.startswith("security")]
    attached = {g["GroupId"] for eni in instance(harness, applied_run)["NetworkInterfaces"] for g in eni["Groups"]}
    assert attached == {group}
    return harness.client("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0]


def default_vpc(harness) -> str:
    vpcs = harness.client("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpcs[0]["VpcId"]


def test_every_variant_created_its_instance_role_and_group(applied):
    harness = applied["harness"]
    for name, run in applied["runs"].items():
        found = harness.tagged(run.variables["run_id"])
        kinds = sorted(entry.split(" ")[0] for entry in found)
        assert kinds == ["instance", "instance", "role", "security"], (name, found)  # instance + profile
        described = instance(harness, run)
        assert described["MetadataOptions"]["HttpTokens"] == "required", name
        assert {t["Key"]: t["Value"] for t in described["Tags"]}["campaign:run-id"] == run.variables["run_id"]


def test_the_security_group_allows_https_out_only_and_nothing_in(applied):
    harness = applied["harness"]
    group = group_of(harness, applied["runs"]["existing-bucket"])
    assert group["IpPermissions"] == []
    (egress,) = group["IpPermissionsEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert group["VpcId"] == default_vpc(harness)


def test_a_subnet_in_another_vpc_gets_a_group_in_that_vpc(applied):
    harness = applied["harness"]
    described = instance(harness, applied["runs"]["subnet"])
    assert described["SubnetId"] == applied["subnet"]
    assert group_of(harness, applied["runs"]["subnet"])["VpcId"] == applied["vpc"] != default_vpc(harness)


def test_the_imds_hop_limit_is_1_unless_raised(applied):
    harness = applied["harness"]
    assert instance(harness, applied["runs"]["existing-bucket"])["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert instance(harness, applied["runs"]["spot-state-backend"])["MetadataOptions"]["HttpPutResponseHopLimit"] == 2


def test_a_spot_run_requests_a_spot_instance(applied):
    harness = applied["harness"]
    assert instance(harness, applied["runs"]["spot-state-backend"]).get("InstanceLifecycle") == "spot"
    assert instance(harness, applied["runs"]["existing-bucket"]).get("InstanceLifecycle") != "spot"


def role_policies(harness, run_id: str) -> dict[str, dict]:
    iam = harness.client("iam")
    (role,) = [entry.split(" ", 1)[1] for entry in harness.tagged(run_id) if entry.startswith("role ")]
    return {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }


def test_the_repo_token_parameter_alone_is_readable_and_only_when_set(applied):
    harness = applied["harness"]
    spot = role_policies(harness, "run-state")
    token = [doc for name, doc in spot.items() if name.startswith("repo-token-")]
    assert len(token) == 1
    (statement,) = token[0]["Statement"]
    assert statement["Action"] == "ssm:GetParameter"
    assert statement["Resource"] == f"arn:aws:ssm:us-east-1:123456789012:parameter{TOKEN_PARAMETER}"
    assert not [name for name in role_policies(harness, "run-existing") if name.startswith("repo-token-")]


def test_an_existing_bucket_is_not_touched(applied):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        applied["harness"].client("s3").get_bucket_policy(Bucket=applied["bucket"])
    assert not [a for a in applied["runs"]["existing-bucket"].runner.state_list() if a.startswith("aws_s3_bucket")]


def test_the_state_backend_keeps_the_state_in_s3_with_a_lockfile_lock(applied):
    run = applied["runs"]["spot-state-backend"]
    s3 = applied["harness"].client("s3")
    key = "tfstate/run-state/terraform.tfstate"
    state = json.loads(s3.get_object(Bucket=applied["state_bucket"], Key=key)["Body"].read())
    assert any(r["type"] == "aws_instance" for r in state["resources"])
    assert not (run.runner.workdir / "terraform.tfstate").exists()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=applied["state_bucket"]).get("Contents", [])]
    assert listed == [key]  # the lock file (<key>.tflock) is gone once apply released it


def test_a_held_lockfile_stops_a_second_terraform(applied):
    """use_lockfile is on: while <key>.tflock exists (another campaign down, say), Terraform refuses."""
    from campaign.targets.aws.tf import TerraformFailed

    run = applied["runs"]["spot-state-backend"]
    s3 = applied["harness"].client("s3")
    lock = {"Bucket": applied["state_bucket"], "Key": "tfstate/run-state/terraform.tfstate.tflock"}
    s3.put_object(**lock, Body=json.dumps({"ID": "held-by-test", "Operation": "OperationTypeApply"}).encode())
    try:
        with pytest.raises(TerraformFailed, match=r"(?s)state lock"):
            run.runner.plan()
    finally:
        s3.delete_object(**lock)


def test_the_instance_role_lets_the_agent_use_its_prefix_and_nothing_else(applied, monkeypatch, tmp_path):
    """Least privilege, enforced by moto's IAM (its own server: enforcing_moto.py). The instance role's S3
    policy exactly as Terraform rendered it (read back from moto's IAM) is given to an IAM user, whose
    keys the store then uses the way the agent does. Named stand-in: a user with the role's policy for the
    role (nothing can assume it here). What moto cannot enforce: condition keys it does not know count as
    matched, so the `s3:prefix` condition of the ListBucket statements is not shown here (any prefix could
    be listed); test_aws_terraform_module.py evaluates those statements, and infra-validation/ a real one."""
    import boto3

    from campaign.store.s3 import S3Settings, S3Store
    from tests.aws.enforcing_moto import enforcing_moto, user_with_policy

    (policy,) = [
        doc for name, doc in role_policies(applied["harness"], "run-existing").items() if name.startswith("run-prefix-")
    ]
    bucket, mine = applied["bucket"], "runs/run-existing"
    with enforcing_moto(free_requests=6) as endpoint:
        setup = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        setup.create_bucket(Bucket=bucket)
        setup.put_object(Bucket=bucket, Key="campaigns/prebuilt/abc/target.json", Body=b"{}")
        setup.put_object(Bucket=bucket, Key="campaigns/runs/other-run/run.json", Body=b"{}")
        for name, value in {
            **user_with_policy(endpoint, "instance", json.dumps(policy)),
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        store = S3Store.from_url(
            f"s3://{bucket}/campaigns",
            settings=S3Settings(multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024, max_attempts=1),
        )
        agent_operations_succeed(store, mine, tmp_path)
        everything_else_is_denied(store)


def agent_operations_succeed(store, mine: str, tmp_path) -> None:
    """What the agent does, all in its own prefix (and reading prebuilt/): allowed."""
    store.put_bytes(b"{}", f"{mine}/run.json")
    etag = store.put_conditional(b"lease", f"{mine}/lease.json", expect=None)
    store.put_conditional(b"lease 2", f"{mine}/lease.json", expect=etag)
    assert store.read_versioned(f"{mine}/lease.json")[0] == b"lease 2"
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (6 * 1024 * 1024))  # multipart: create, parts, complete
    assert store.put_file(big, f"{mine}/outputs/big.bin").size == big.stat().st_size
    assert store.stat(f"{mine}/run.json") is not None and store.get_bytes(f"{mine}/run.json") == b"{}"
    store.delete(f"{mine}/run.json")
    assert store.get_bytes("prebuilt/abc/target.json") == b"{}"
    store.put_bytes(b"data", "cache/0123abcd/files/data/sf1/region.parquet")  # the data cache, shared by runs
    assert store.get_bytes("cache/0123abcd/files/data/sf1/region.parquet") == b"data"
    store.delete("cache/0123abcd/files/data/sf1/region.parquet")


def everything_else_is_denied(store) -> None:
    from campaign.errors import StoreError

    for write in ("runs/other-run/journal.jsonl", "prebuilt/abc/target.json", "elsewhere.txt"):
        with pytest.raises(StoreError, match="access denied"):
            store.put_bytes(b"forged", write)
    with pytest.raises(StoreError, match="access denied"):
        store.get_bytes("runs/other-run/run.json")
    with pytest.raises(StoreError, match="access denied"):
        store.delete("prebuilt/abc/target.json")


def test_a_created_bucket_refuses_plain_http_by_policy(applied):
    """The bucket this module creates carries a Deny on aws:SecureTransport = false. Read back from moto;
    moto does not know that condition key (it would deny every request), so the effect on HTTP requests
    is for infra-validation/ to show."""
    policy = json.loads(applied["harness"].client("s3").get_bucket_policy(Bucket=applied["created_bucket"])["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] in ("*", {"AWS": "*"})
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == [
        f"arn:aws:s3:::{applied['created_bucket']}",
        f"arn:aws:s3:::{applied['created_bucket']}/*",
    ]
    assert "aws_s3_bucket_policy.results[0]" in applied["runs"]["subnet"].runner.state_list()


def test_destroy_leaves_nothing_tagged_with_any_run(applied):
    harness = applied["harness"]
    destroy_in_parallel(list(applied["runs"].values()))
    for run in applied["runs"].values():
        assert harness.tagged(run.variables["run_id"]) == [], run.name
        assert run.runner.state_list() == []
