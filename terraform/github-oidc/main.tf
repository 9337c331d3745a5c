# The GitHub OIDC provider and the role the prebuild workflow (.github/workflows/prebuild.yml) assumes:
# only the given repository's runs on the given branch may assume it, and it may only read, write and
# list PREFIX/prebuilt/ in the store's bucket. Applied once per account, by hand; not part of ../
# (the per-run module).

locals {
  github_oidc_host = "token.actions.githubusercontent.com"
  prebuilt_prefix  = "${var.prefix}/prebuilt/"
  subject          = "repo:${var.github_repository}:ref:refs/heads/${var.branch}"
  provider_arn     = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
}

data "aws_partition" "current" {}

resource "aws_iam_openid_connect_provider" "github" {
  count          = var.create_oidc_provider ? 1 : 0
  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS verifies GitHub's certificate through its own trusted CAs and ignores these; older provider
  # versions still require the list, so it holds GitHub's two published intermediate thumbprints.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
  ]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 0 : 1
  url   = "https://${local.github_oidc_host}"
}

data "aws_iam_policy_document" "assume_from_github" {
  statement {
    sid     = "GitHubMainBranchOnly"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:sub"
      values   = [local.subject]
    }
  }
}

resource "aws_iam_role" "prebuild" {
  name                 = var.role_name
  description          = "GitHub Actions prebuild of ${var.github_repository}@${var.branch}: s3://${var.bucket}/${local.prebuilt_prefix} only"
  assume_role_policy   = data.aws_iam_policy_document.assume_from_github.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "prebuilt_prefix" {
  statement {
    sid       = "PrebuiltObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"] # tarballs over 64 MiB go up in parts
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/${local.prebuilt_prefix}*"]
  }

  statement {
    sid       = "ListPrebuiltPrefix"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prebuilt_prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "prebuilt_prefix" {
  name   = "prebuilt-prefix"
  role   = aws_iam_role.prebuild.id
  policy = data.aws_iam_policy_document.prebuilt_prefix.json
}
