# A kept cluster: N nodes in one security group whose only inbound rule is from itself (the nodes reach each
# other's services; nothing else reaches them: access is SSM only, no SSH key), an optional placement group,
# and each node tagged at creation with the cluster, its role and its index (a half-launched cluster is found by
# its tags). One Terraform state per cluster.

locals {
  key_prefix      = var.prefix == "" ? "" : "${trim(var.prefix, "/")}/"
  cluster_prefix  = "${local.key_prefix}clusters/${var.cluster}/"
  prebuilt_prefix = "${local.key_prefix}prebuilt/"
  name            = "campaign-cluster-${var.cluster}"

  tags = {
    "campaign"         = var.campaign
    "campaign:cluster" = var.cluster
    "campaign:commit"  = var.commit
    "managed-by"       = "campaign"
  }

  architecture = contains(data.aws_ec2_instance_type.coordinator.supported_architectures, "x86_64") ? "x86_64" : "arm64"
}

data "aws_partition" "current" {}

data "aws_ec2_instance_type" "coordinator" {
  instance_type = var.coordinator_instance_type
}

data "aws_ssm_parameter" "al2023" {
  name = "${var.ami_ssm_parameter_prefix}-${local.architecture}"
}

resource "aws_security_group" "cluster" {
  name_prefix = "${local.name}-"
  description = "campaign cluster ${var.cluster}: inbound only from its own nodes; outbound for git, pip, S3, SSM"

  lifecycle {
    create_before_destroy = true
  }
}

# The one inbound rule: every protocol and port, from the cluster's own nodes only.
resource "aws_vpc_security_group_ingress_rule" "intra_cluster" {
  security_group_id            = aws_security_group.cluster.id
  description                  = "the cluster's nodes reach each other's services"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.cluster.id
}

resource "aws_vpc_security_group_egress_rule" "out" {
  #checkov:skip=CKV_AWS_382:the nodes clone the repository, install packages and reach S3 and SSM endpoints on the internet; inbound stays intra-cluster only
  security_group_id = aws_security_group.cluster.id
  description       = "HTTPS/HTTP/DNS out: the git remote, PyPI, S3 and the SSM endpoints"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_placement_group" "cluster" {
  count    = var.placement_strategy == "" ? 0 : 1
  name     = local.name
  strategy = var.placement_strategy
}

resource "aws_instance" "node" {
  #checkov:skip=CKV_AWS_126:detailed monitoring costs money; campaign checks the services' health itself
  #checkov:skip=CKV_AWS_88:no public IP is requested; the subnet decides (outbound only, inbound is intra-cluster only)
  count = var.nodes

  ami                         = data.aws_ssm_parameter.al2023.insecure_value
  instance_type               = count.index == 0 ? var.coordinator_instance_type : var.worker_instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = [aws_security_group.cluster.id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  placement_group             = var.placement_strategy == "" ? null : aws_placement_group.cluster[0].id
  user_data                   = var.user_data
  user_data_replace_on_change = false # stop/start keeps the node; a new userdata would replace it
  ebs_optimized               = true

  # A cluster is kept: a node that shuts down stops (its volume stays) rather than terminating.
  instance_initiated_shutdown_behavior = "stop"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
    instance_metadata_tags      = "enabled" # the node reads its role and index from its tags
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_gb
    encrypted             = true
    delete_on_termination = true
  }

  dynamic "instance_market_options" {
    for_each = (count.index == 0 ? var.coordinator_spot : var.worker_spot) ? [1] : []
    content {
      market_type = "spot"
      spot_options {
        spot_instance_type             = "persistent"
        instance_interruption_behavior = "stop"
      }
    }
  }

  # Set in RunInstances' TagSpecifications: the node is tagged from the moment it exists.
  tags = {
    Name               = "${local.name}-${count.index}"
    "campaign:role"    = count.index == 0 ? "coordinator" : "workers"
    "campaign:index"   = tostring(count.index + 1)
    "campaign:cluster" = var.cluster
  }

  volume_tags = local.tags
}
