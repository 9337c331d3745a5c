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

resource "aws_security_group" "runner" {
  name_prefix = "${local.name}-"
  description = "campaign run ${var.run_id}: no inbound rules (access is SSM only); outbound for git, pip, S3, SSM"

  egress {
    description = "HTTPS/HTTP/DNS out: the git remote, PyPI, S3 and the SSM endpoints"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"] #checkov:skip=CKV_AWS_382:the instance clones the repository and installs packages from the internet; there is no inbound rule at all
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
    http_put_response_hop_limit = 2 # containers on the instance (docker) reach IMDSv2 too
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
