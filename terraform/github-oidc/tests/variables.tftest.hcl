# `terraform test` with a mocked AWS provider: what the README tells a user to pass plans cleanly, and
# every validation refuses the values it exists for. Run by `make test` (tests/aws/test_aws_terraform_cli.py).

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_data "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }
}

variables {
  github_repository = "acme/bench"
  bucket            = "campaign-123456789012-us-east-1"
}

run "the_documented_values_plan" {
  command = plan
  assert {
    condition     = output.prebuilt_location == "s3://campaign-123456789012-us-east-1/campaign/prebuilt/"
    error_message = "the role must be limited to PREFIX/prebuilt/"
  }
  assert {
    condition     = aws_iam_role.prebuild.max_session_duration == 3600
    error_message = "one-hour sessions"
  }
}

run "an_existing_oidc_provider_is_looked_up" {
  command = plan
  variables {
    create_oidc_provider = false
  }
  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0
    error_message = "create_oidc_provider = false must not create a second provider"
  }
}

run "refuses_a_url_as_repository" {
  command = plan
  variables {
    github_repository = "https://github.com/acme/bench.git"
  }
  expect_failures = [var.github_repository]
}

run "refuses_a_wildcard_branch" {
  command = plan
  variables {
    branch = "release/*"
  }
  expect_failures = [var.branch]
}

run "refuses_a_bucket_that_is_no_bucket_name" {
  command = plan
  variables {
    bucket = "Results_Bucket"
  }
  expect_failures = [var.bucket]
}

run "refuses_a_prefix_with_slashes_around" {
  command = plan
  variables {
    prefix = "/campaign/"
  }
  expect_failures = [var.prefix]
}

run "refuses_an_empty_prefix" {
  command = plan
  variables {
    prefix = ""
  }
  expect_failures = [var.prefix]
}
