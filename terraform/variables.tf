# Every variable here is set by campaign (campaign/targets/aws/infra.py, module_variables) in the
# run's terraform.tfvars.json; tests/aws/test_aws_terraform_module.py keeps the two in step.

variable "run_id" {
  description = "The campaign run id (e.g. 20261122T181500Z-1a2b3c4-k3f9). Names and tags every resource of the run."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-Za-z][0-9A-Za-z._-]{0,79}$", var.run_id))
    error_message = "run_id must be 1-80 characters: letters, digits, '.', '_' or '-'."
  }
}

variable "campaign" {
  description = "The campaign's name (from the campaign file); a tag."
  type        = string
}

variable "commit" {
  description = "The git commit the instance clones and runs; a tag."
  type        = string
}

variable "region" {
  description = "The AWS region of the instances (and of the bucket when this module creates it)."
  type        = string
}

variable "instance_type" {
  description = "The EC2 instance type, e.g. c7i.2xlarge. x86_64 or arm64: the AMI follows the type's architecture."
  type        = string
}

variable "instance_count" {
  description = "How many instances run the same userdata. campaign passes 1: one agent per run."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 8
    error_message = "instance_count must be between 1 and 8."
  }
}

variable "spot" {
  description = "Request one-time spot instances (terminated, not stopped, on interruption) instead of on-demand."
  type        = bool
  default     = false
}

variable "root_volume_gb" {
  description = "Size of the encrypted gp3 root volume in GiB: the checkout, the venv and the data of the run."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_gb >= 8 && var.root_volume_gb <= 16384
    error_message = "root_volume_gb must be between 8 and 16384."
  }
}

variable "bucket" {
  description = "The results bucket: created here when create_bucket is true, otherwise an existing bucket."
  type        = string
}

variable "create_bucket" {
  description = "Create the results bucket (versioned, encrypted, public access blocked). campaign removes it from this state before destroy, so the results outlive the run."
  type        = bool
  default     = false
}

variable "prefix" {
  description = "The store prefix inside the bucket ('' for the bucket root). The instance may write only under <prefix>/runs/<run_id>/."
  type        = string
  default     = ""

  # No leading, trailing or doubled slash, no IAM wildcard (* ?) and no policy variable (${...}):
  # the prefix is written into the instance role's policy, so any of those would widen it.
  validation {
    condition     = var.prefix == "" || can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be empty or path segments of letters, digits, '.', '_' and '-' separated by single slashes, without a leading or trailing slash and without wildcards."
  }
}

variable "user_data" {
  description = "The rendered userdata script (campaign renders userdata/*.j2 with jinja2; Terraform never templates shell)."
  type        = string
}

variable "subnet_id" {
  description = "The subnet of the instances; null uses the default VPC's default subnet. It needs outbound access to S3, SSM and the git remote."
  type        = string
  default     = null
}

variable "ami_ssm_parameter_prefix" {
  description = "Public SSM parameter path of the AL2023 AMI without the architecture suffix."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default"
}

variable "imds_hop_limit" {
  description = "The instance metadata (IMDSv2) response hop limit. 1 keeps the instance role's credentials away from containers that stages start; 2 lets them reach IMDS."
  type        = number
  default     = 1

  validation {
    condition     = var.imds_hop_limit >= 1 && var.imds_hop_limit <= 64
    error_message = "imds_hop_limit must be between 1 and 64."
  }
}

variable "repo_token_parameter" {
  description = "The SSM parameter (SecureString) holding a token for cloning a private repository over HTTPS, or null. The instance role may read just this parameter."
  type        = string
  default     = null

  validation {
    condition     = var.repo_token_parameter == null || can(regex("^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.repo_token_parameter))
    error_message = "repo_token_parameter must be an SSM parameter name such as /campaign/github-token (letters, digits, '_', '.', '-' and '/')."
  }
}
