output "instance_ids" {
  description = "The nodes' instance ids, node 1 (the coordinator) first."
  value       = aws_instance.node[*].id
}

output "private_ips" {
  description = "The nodes' private addresses, node 1 first: what services bind and templates get as node.address."
  value       = aws_instance.node[*].private_ip
}

output "security_group_id" {
  description = "The cluster's security group (inbound only from itself)."
  value       = aws_security_group.cluster.id
}

output "architecture" {
  description = "x86_64 or arm64, after the coordinator's instance type: which prebuilt the nodes fetch."
  value       = local.architecture
}
