# `terraform test` with a mocked AWS provider (nothing is created, no credentials are needed): the
# variables campaign passes (terraform.tfvars.json, written by tests/aws/test_aws_terraform_cli.py from
# campaign/targets/aws/infra.py) plan cleanly, the plan has the properties the module promises, and
# every validation refuses the values it exists for. Run by `make test`; by hand:
#   cd terraform && terraform init -backend=false && terraform test

mock_provider "aws" {
  mock_data "aws_ec2_instance_type" {
    defaults = {
      supported_architectures = ["x86_64", "i386"]
    }
  }
  mock_data "aws_ssm_parameter" {
    defaults = {
      insecure_value = "ami-0123456789abcdef0"
    }
  }
  mock_data "aws_vpc" {
    defaults = {
      id = "vpc-default"
    }
  }
  mock_data "aws_subnet" {
    defaults = {
      vpc_id = "vpc-chosen"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

run "what_campaign_passes_plans" {
  command = plan

  assert {
    condition     = aws_security_group.runner.vpc_id == "vpc-default"
    error_message = "without subnet_id, the security group must be in the default VPC"
  }
  assert {
    condition     = [for rule in aws_security_group.runner.egress : [rule.protocol, rule.from_port, rule.to_port]] == [["tcp", 443, 443]]
    error_message = "egress must be HTTPS (tcp 443) only"
  }
  assert {
    condition     = aws_instance.runner[0].metadata_options[0].http_put_response_hop_limit == 1 && aws_instance.runner[0].metadata_options[0].http_tokens == "required"
    error_message = "IMDSv2 with hop limit 1 by default"
  }
  assert {
    condition     = length(aws_iam_role_policy.repo_token) == 0
    error_message = "no SSM permission without repo_token_parameter"
  }
}

run "a_subnet_brings_its_vpc" {
  command = plan
  variables {
    subnet_id = "subnet-0123456789abcdef0"
  }
  assert {
    condition     = aws_security_group.runner.vpc_id == "vpc-chosen" && aws_instance.runner[0].subnet_id == "subnet-0123456789abcdef0"
    error_message = "the security group must be in the chosen subnet's VPC"
  }
}

run "a_created_bucket_gets_the_tls_only_policy" {
  command = plan
  variables {
    create_bucket = true
  }
  assert {
    condition     = length(aws_s3_bucket_policy.results) == 1 && length(aws_s3_bucket_public_access_block.results) == 1
    error_message = "a bucket this module creates must carry the TLS-only policy and the public access block"
  }
}

run "a_token_parameter_and_a_higher_hop_limit" {
  command = plan
  variables {
    repo_token_parameter = "/campaign/github-token"
    imds_hop_limit       = 2
  }
  assert {
    condition     = length(aws_iam_role_policy.repo_token) == 1 && aws_instance.runner[0].metadata_options[0].http_put_response_hop_limit == 2
    error_message = "repo_token_parameter must add its policy; imds_hop_limit must reach the instance"
  }
}

run "an_empty_prefix_is_the_bucket_root" {
  command = plan
  variables {
    prefix = ""
  }
  assert {
    condition     = output.run_prefix == "runs/${var.run_id}/"
    error_message = "an empty prefix must put runs at the bucket root"
  }
}

run "refuses_a_run_id_with_a_path" {
  command = plan
  variables {
    run_id = "../../etc"
  }
  expect_failures = [var.run_id]
}

run "refuses_a_prefix_with_a_leading_slash" {
  command = plan
  variables {
    prefix = "/campaign"
  }
  expect_failures = [var.prefix]
}

run "refuses_a_prefix_with_a_trailing_slash" {
  command = plan
  variables {
    prefix = "campaign/"
  }
  expect_failures = [var.prefix]
}

run "refuses_a_prefix_with_a_wildcard" {
  command = plan
  variables {
    prefix = "camp*"
  }
  expect_failures = [var.prefix]
}

run "refuses_a_prefix_with_a_policy_variable" {
  command = plan
  variables {
    prefix = "$${aws:username}"
  }
  expect_failures = [var.prefix]
}

run "refuses_a_prefix_with_a_doubled_slash" {
  command = plan
  variables {
    prefix = "a//b"
  }
  expect_failures = [var.prefix]
}

run "refuses_hop_limit_0" {
  command = plan
  variables {
    imds_hop_limit = 0
  }
  expect_failures = [var.imds_hop_limit]
}

run "refuses_a_tiny_root_volume" {
  command = plan
  variables {
    root_volume_gb = 4
  }
  expect_failures = [var.root_volume_gb]
}

run "refuses_zero_instances" {
  command = plan
  variables {
    instance_count = 0
  }
  expect_failures = [var.instance_count]
}

run "refuses_a_token_parameter_that_is_no_name" {
  command = plan
  variables {
    repo_token_parameter = "arn:aws:ssm:*"
  }
  expect_failures = [var.repo_token_parameter]
}
