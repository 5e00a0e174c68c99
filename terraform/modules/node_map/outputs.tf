output "nodes" {
  description = "Node name => {group, parent_group, role, instance_type, api_domain, api_node_port}, from the node map."
  value       = local.nodes
}

output "api_targets" {
  description = "API domain => {node, node_port}: the node whose growbin_api_domain is the domain and its growbin_api_node_port."
  value       = local.api_targets

  precondition {
    condition     = length(local.api_targets_without_valid_node_port) == 0
    error_message = "API domains without a growbin_api_node_port in the NodePort range 30000-32767: ${join(", ", local.api_targets_without_valid_node_port)}."
  }
}
