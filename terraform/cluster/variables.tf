# A kept cluster of N nodes (`campaign cluster up --target aws`): node 0 the coordinator, the others workers.
variable "cluster" {
  description = "The cluster's name (tags, resource names)."
  type        = string
}

variable "campaign" {
  description = "The campaign's name (a tag)."
  type        = string
}

variable "commit" {
  description = "The commit deployed when the cluster came up (a tag; `cluster deploy` changes what runs, not this)."
  type        = string
}

variable "region" {
  description = "The AWS region."
  type        = string
}

variable "nodes" {
  description = "How many nodes: the coordinator plus nodes - 1 workers."
  type        = number

  validation {
    condition     = var.nodes >= 1 && var.nodes <= 64
    error_message = "nodes is from 1 to 64."
  }
}

variable "coordinator_instance_type" {
  description = "The coordinator's instance type."
  type        = string
}

variable "worker_instance_type" {
  description = "The workers' instance type (same architecture as the coordinator's)."
  type        = string
}

variable "coordinator_spot" {
  description = "The coordinator as a spot instance (usually not: it holds the cluster's state)."
  type        = bool
  default     = false
}

variable "worker_spot" {
  description = "The workers as spot instances."
  type        = bool
  default     = false
}

variable "placement_strategy" {
  description = "A placement group's strategy (cluster, spread or partition), or empty for none."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "cluster", "spread", "partition"], var.placement_strategy)
    error_message = "placement_strategy is cluster, spread, partition or empty."
  }
}

variable "root_volume_gb" {
  description = "Each node's root volume (gp3, encrypted), kept across stop/start."
  type        = number
  default     = 100
}

variable "bucket" {
  description = "The results bucket; the nodes may read and write only <prefix>clusters/<cluster>/ and read prebuilt/."
  type        = string
}

variable "prefix" {
  description = "The store's key prefix in the bucket."
  type        = string
  default     = "campaign"
}

variable "user_data" {
  description = "Each node's boot script (rendered by campaign; the node reads its role and index from its tags)."
  type        = string
}

variable "subnet_id" {
  description = "The subnet of every node (one subnet: the placement group and the intra-cluster rule need it); null for the default VPC's."
  type        = string
  default     = null
}

variable "ami_ssm_parameter_prefix" {
  description = "AWS's public SSM parameter of the AL2023 AMI, without the architecture suffix."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default"
}
