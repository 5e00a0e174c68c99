# Flattens the Ansible node map (inventories/node_map.yml) into one map of nodes, so the
# EC2 instances, their security groups and instance profiles all come from the same file
# Ansible reads. Pure expressions: no provider, so it can be evaluated on its own.

locals {
  inventory = yamldecode(file(var.inventory_file))

  # Groups directly under k8s_cluster (masters, api, workers, data, monitoring) and the
  # groups one level further down (data -> postgresql, redis, rabbitmq).
  top_groups = local.inventory.all.children.k8s_cluster.children

  nodes_in_top_groups = flatten([
    for group, body in local.top_groups : [
      for host, vars in coalesce(try(body.hosts, null), {}) : {
        name = host, group = group, parent_group = null, vars = vars
      }
    ]
  ])

  nodes_in_sub_groups = flatten([
    for parent, parent_body in local.top_groups : [
      for group, body in coalesce(try(parent_body.children, null), {}) : [
        for host, vars in coalesce(try(body.hosts, null), {}) : {
          name = host, group = group, parent_group = parent, vars = vars
        }
      ]
    ]
  ])

  # One fixed shape per node: Terraform cannot build a map from objects whose optional
  # inventory keys differ, and it needs only these attributes.
  # A host listed twice is a map key collision, which Terraform reports as an error.
  nodes = {
    for node in concat(local.nodes_in_top_groups, local.nodes_in_sub_groups) : node.name => {
      group         = node.group
      parent_group  = node.parent_group
      role          = node.vars.growbin_node_role
      instance_type = node.vars.growbin_instance_type
      api_domain    = try(node.vars.growbin_api_domain, null)
      api_node_port = try(node.vars.growbin_api_node_port, null)
    }
  }

  # API domain => the one node that runs it and its Service's NodePort: the ALB's target
  # group of the domain holds exactly that node on that port. A domain on two nodes is a
  # duplicate key, which Terraform reports as an error.
  api_targets = {
    for name, node in local.nodes : node.api_domain => {
      node      = name
      node_port = node.api_node_port
    } if node.api_domain != null
  }

  api_targets_without_valid_node_port = [
    for domain, target in local.api_targets : domain
    if try(target.node_port < 30000 || target.node_port > 32767, true)
  ]
}
