# The infrastructure of one campaign run: an instance role scoped to the run's prefix, a security
# group without inbound rules, and the instance(s). One Terraform state per run (campaign keeps it
# in .campaign/aws/<run-id>/ or in an S3 backend), destroyed when the run ends.

locals {
  key_prefix = var.prefix == "" ? "" : "${trim(var.prefix, "/")}/"
  run_prefix = "${local.key_prefix}runs/${var.run_id}/"
  name       = "campaign-${substr(sha256(var.run_id), 0, 12)}"

  tags = {
    "campaign"        = var.campaign
    "campaign:run-id" = var.run_id
    "campaign:commit" = var.commit
    "managed-by"      = "campaign"
  }

  architecture = contains(data.aws_ec2_instance_type.selected.supported_architectures, "x86_64") ? "x86_64" : "arm64"
}

data "aws_partition" "current" {}

data "aws_ec2_instance_type" "selected" {
  instance_type = var.instance_type
}

# The AL2023 AMI through AWS's public SSM parameter: always the current, patched image.
data "aws_ssm_parameter" "al2023" {
  name = "${var.ami_ssm_parameter_prefix}-${local.architecture}"
}

# The security group belongs to the VPC of the chosen subnet (else the default VPC): a group in another
# VPC than the instance's subnet fails at RunInstances ("belong to different networks").
data "aws_subnet" "chosen" {
  count = var.subnet_id == null ? 0 : 1
  id    = var.subnet_id
}

data "aws_vpc" "default" {
  count   = var.subnet_id == null ? 1 : 0
  default = true
}

resource "aws_security_group" "runner" {
  name_prefix = "${local.name}-"
  description = "campaign run ${var.run_id}: no inbound rules (access is SSM only); HTTPS out only"
  vpc_id      = var.subnet_id == null ? data.aws_vpc.default[0].id : data.aws_subnet.chosen[0].vpc_id

  # Everything the instance reaches speaks HTTPS: the git remote, PyPI, crates.io, AL2023's dnf
  # repositories (cdn.amazonlinux.com), S3 and the SSM endpoints. DNS goes to the VPC's resolver,
  # which security groups do not filter. No port 80: nothing the instance needs uses plain HTTP.
  egress {
    description = "HTTPS out: the git remote, package indexes, dnf repositories, S3, SSM"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_instance" "runner" {
  #checkov:skip=CKV_AWS_126:detailed monitoring costs money and campaign watches the run's journal in S3, not CloudWatch
  #checkov:skip=CKV_AWS_88:no public IP is requested; the default subnet decides (outbound only, the security group has no inbound rule)
  count = var.instance_count

  ami                                  = data.aws_ssm_parameter.al2023.insecure_value
  instance_type                        = var.instance_type
  subnet_id                            = var.subnet_id
  vpc_security_group_ids               = [aws_security_group.runner.id]
  iam_instance_profile                 = aws_iam_instance_profile.runner.name
  instance_initiated_shutdown_behavior = "terminate"
  user_data                            = var.user_data
  user_data_replace_on_change          = true
  ebs_optimized                        = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.imds_hop_limit # 1: containers on the instance cannot reach the role's credentials
    instance_metadata_tags      = "enabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_gb
    encrypted             = true
    delete_on_termination = true
  }

  dynamic "instance_market_options" {
    for_each = var.spot ? [1] : []
    content {
      market_type = "spot"
      spot_options {
        spot_instance_type             = "one-time"
        instance_interruption_behavior = "terminate"
      }
    }
  }

  tags = {
    Name = "${local.name}-${count.index}"
  }

  volume_tags = local.tags
}
