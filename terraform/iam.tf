# The instance role: read and write only the run's own prefix in the results bucket, read and list
# (never write or delete) the prebuilt build tarballs under <prefix>prebuilt/, read and write the data
# cache under <prefix>cache/, plus what the SSM agent needs (Session Manager is the only way in: there
# are no SSH keys).

locals {
  # <prefix>prebuilt/<commit-sha>/{target.tar.gz,target.tar.gz.sha256,target.json} and
  # <prefix>prebuilt/latest.json, written only by the prebuild workflow's own role.
  prebuilt_prefix = "${local.key_prefix}prebuilt/"
  # <prefix>cache/<key>/{files/…,manifest.json}: data a `cache: true` stage generated, shared by the runs
  # of a sweep, both sides of an A/B and resumes. Runs write it (a miss stores, a refused entry is
  # replaced): every fetch verifies each file against the manifest, so a bad entry is regenerated, not used.
  cache_prefix = "${local.key_prefix}cache/"
}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "runner" {
  name_prefix        = "${local.name}-"
  description        = "campaign run ${var.run_id}: its own S3 prefix, prebuilt/ read-only, and SSM"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.runner.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "run_prefix" {
  statement {
    sid = "RunObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/${local.run_prefix}*"]
  }

  statement {
    sid       = "ListRunPrefix"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.run_prefix}*"]
    }
  }

  # Read-only: the prebuilt tarballs are shared by every run, so no run may replace or delete them.
  statement {
    sid       = "ReadPrebuilt"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/${local.prebuilt_prefix}*"]
  }

  statement {
    sid       = "ListPrebuilt"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      # The * matches the empty string too, so this also allows listing <prefix>prebuilt/ itself
      # (e.g. its commit folders with a delimiter).
      values = ["${local.prebuilt_prefix}*"]
    }
  }

  statement {
    sid = "CacheObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/${local.cache_prefix}*"]
  }

  statement {
    sid       = "ListCache"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.cache_prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "run_prefix" {
  name_prefix = "run-prefix-"
  role        = aws_iam_role.runner.id
  policy      = data.aws_iam_policy_document.run_prefix.json
}

resource "aws_iam_instance_profile" "runner" {
  name_prefix = "${local.name}-"
  role        = aws_iam_role.runner.name
}

# A private repository's token, read at boot by the userdata (aws ssm get-parameter --with-decryption):
# this one parameter only. A SecureString under the AWS-managed key aws/ssm needs no kms statement: that
# key's policy lets every principal of the account decrypt through SSM.
data "aws_caller_identity" "current" {
  count = var.repo_token_parameter == null ? 0 : 1
}

data "aws_iam_policy_document" "repo_token" {
  count = var.repo_token_parameter == null ? 0 : 1

  statement {
    sid       = "ReadRepoToken"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current[0].account_id}:parameter/${trimprefix(var.repo_token_parameter, "/")}"]
  }
}

resource "aws_iam_role_policy" "repo_token" {
  count       = var.repo_token_parameter == null ? 0 : 1
  name_prefix = "repo-token-"
  role        = aws_iam_role.runner.id
  policy      = data.aws_iam_policy_document.repo_token[0].json
}
