variable "flow_matrix_file" {
  type        = string
  description = "Path of the flow matrix (inventories/flow_matrix.yml, key growbin_flow_matrix)."
}

variable "nodes" {
  type = map(object({
    group        = string
    parent_group = string
  }))
  description = "Node name => {group, parent_group}: the node_map module's `nodes` (extra attributes are ignored)."
}

variable "runtime" {
  type        = string
  description = "Application runtime whose flows are enforced (a value of the matrix entries' `runtimes`)."
  default     = "kubernetes"

  validation {
    condition     = contains(["systemd", "kubernetes"], var.runtime)
    error_message = "runtime must be systemd or kubernetes."
  }
}
