variable "inventory_file" {
  type        = string
  description = "Path of the Ansible node map (inventories/node_map.yml)."
}
