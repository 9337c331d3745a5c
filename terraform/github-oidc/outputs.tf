output "role_arn" {
  description = "The role's ARN: set it as the repository variable CAMPAIGN_PREBUILD_ROLE_ARN."
  value       = aws_iam_role.prebuild.arn
}

output "oidc_provider_arn" {
  description = "The GitHub OIDC provider's ARN (created here, or the account's existing one)."
  value       = local.provider_arn
}

output "prebuilt_location" {
  description = "Where the role may write: s3://BUCKET/PREFIX/prebuilt/ (the workflow's BUCKET and PREFIX)."
  value       = "s3://${var.bucket}/${local.prebuilt_prefix}"
}
