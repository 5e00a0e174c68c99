output "security_groups" {
  description = "Security group key => node names in it (`edge`, the ALB, has none)."
  value       = local.members

  precondition {
    condition     = length(local.unknown_names) == 0
    error_message = "The flow matrix names groups or hosts the node map does not have: ${join(", ", local.unknown_names)}."
  }
}

output "node_security_groups" {
  description = "Node name => security group keys the node is in."
  value = {
    for node in keys(var.nodes) : node => sort([for name, nodes in local.members : name if contains(nodes, node)])
  }
}

output "group_rules" {
  description = "\"<flow>/<source>\" => {security_group, source_security_group, protocol, port, description}: ingress from another security group."
  value       = local.group_rules
}

output "world_rules" {
  description = "Flow name => {security_group, protocol, port, description}: ingress from anywhere (`from: any`)."
  value       = local.world_rules
}

output "edge_egress_rules" {
  description = "The group_rules whose source is `edge`: what the ALB may send, as egress rules of its security group."
  value       = { for key, rule in local.group_rules : key => rule if rule.source_security_group == "edge" }
}
