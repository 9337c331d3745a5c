# Read by campaign (campaign/targets/aws/infra.py, RunInfra.from_outputs).

output "instance_ids" {
  description = "The ids of the run's instances."
  value       = aws_instance.runner[*].id
}

output "bucket" {
  description = "The results bucket."
  value       = var.bucket
}

output "prefix" {
  description = "The store prefix inside the bucket."
  value       = var.prefix
}

output "region" {
  description = "The region of the instances."
  value       = var.region
}

output "run_prefix" {
  description = "The only key prefix the instance role may write: <prefix>/runs/<run_id>/."
  value       = local.run_prefix
}

output "ami_id" {
  description = "The AL2023 AMI the instances boot."
  value       = data.aws_ssm_parameter.al2023.insecure_value
}
