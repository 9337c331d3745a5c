# The instance role: read and write only the run's own prefix in the results bucket, plus what the
# SSM agent needs (Session Manager is the only way in: there are no SSH keys).

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
  description        = "campaign run ${var.run_id}: its own S3 prefix and SSM"
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
