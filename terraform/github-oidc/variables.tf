variable "github_repository" {
  description = "The GitHub repository whose prebuild workflow may assume the role, as owner/name (e.g. acme/bench)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. acme/bench, without https:// or .git."
  }
}

variable "branch" {
  description = "The only branch whose workflow runs may assume the role (the prebuild runs on push to it)."
  type        = string
  default     = "main"

  validation {
    condition     = length(var.branch) > 0 && !strcontains(var.branch, "*")
    error_message = "branch must name one branch; wildcards would let any matching branch write prebuilt tarballs."
  }
}

variable "bucket" {
  description = "The store's S3 bucket (the one `campaign run --target aws` uses); this module does not create it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "prefix" {
  description = "The store's key prefix in the bucket (campaign's `prefix`, default campaign); the role may only touch PREFIX/prebuilt/."
  type        = string
  default     = "campaign"

  validation {
    condition     = length(var.prefix) > 0 && !startswith(var.prefix, "/") && !endswith(var.prefix, "/") && !strcontains(var.prefix, "*")
    error_message = "prefix must be non-empty, without a leading or trailing slash, and without wildcards."
  }
}

variable "role_name" {
  description = "The name of the IAM role the workflow assumes; its ARN is the repository variable CAMPAIGN_PREBUILD_ROLE_ARN."
  type        = string
  default     = "campaign-prebuild"
}

variable "create_oidc_provider" {
  description = "Whether to create the account's GitHub OIDC provider; false when the account already has one (an account holds one per URL)."
  type        = bool
  default     = true
}

variable "region" {
  description = "The AWS region for the provider; IAM is global, so this only decides where API calls go."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Extra tags for the provider and the role."
  type        = map(string)
  default     = {}
}
