output "nodes" {
  description = "Node name => {group, parent_group, role, instance_type, api_domain}, from the node map."
  value       = local.nodes
}
