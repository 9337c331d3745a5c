# The results bucket, when campaign is asked to create it. campaign runs `terraform state rm` on
# these resources before destroy: the bucket and the results in it outlive the run (its tags carry
# no run id). An existing bucket (create_bucket = false) is never touched.

resource "aws_s3_bucket" "results" {
  #checkov:skip=CKV_AWS_18:access logging needs a second bucket; the run's journal and manifest record every write
  #checkov:skip=CKV_AWS_144:cross-region replication doubles storage cost; every artifact is verified by SHA-256 and the bucket is versioned
  #checkov:skip=CKV2_AWS_62:no consumer of event notifications; campaign polls the journal
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) instead of KMS: no per-request KMS cost and no key policy the instance role would need
  count = var.create_bucket ? 1 : 0

  bucket        = var.bucket
  force_destroy = false

  tags = {
    "campaign:run-id" = "shared"
  }
}

resource "aws_s3_bucket_versioning" "results" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.results[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.results[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "results" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.results[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.results[0].id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
  }
}

# Requests without TLS are refused, whoever makes them (aws:SecureTransport is false for plain HTTP).
data "aws_iam_policy_document" "results_tls_only" {
  count = var.create_bucket ? 1 : 0

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.results[0].arn, "${aws_s3_bucket.results[0].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "results" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.results[0].id
  policy = data.aws_iam_policy_document.results_tls_only[0].json

  # The public access block first: S3 refuses some policies while it is being set.
  depends_on = [aws_s3_bucket_public_access_block.results]
}
