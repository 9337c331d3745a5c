# The nodes' role: read and write only <prefix>clusters/<cluster>/ in the results bucket, read (never write)
# prebuilt/, plus what the SSM agent needs (exec and deploy go through SSM Run Command; no SSH).

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "campaign-cluster-"
  description        = "campaign cluster ${var.cluster}: its own S3 prefix, prebuilt/ read-only, and SSM"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "cluster_prefix" {
  statement {
    sid       = "ClusterObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/${local.cluster_prefix}*"]
  }

  statement {
    sid       = "ReadPrebuilt"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/${local.prebuilt_prefix}*"]
  }

  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.cluster_prefix}*", "${local.prebuilt_prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "cluster_prefix" {
  name_prefix = "cluster-prefix-"
  role        = aws_iam_role.node.id
  policy      = data.aws_iam_policy_document.cluster_prefix.json
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = "campaign-cluster-"
  role        = aws_iam_role.node.name
}
