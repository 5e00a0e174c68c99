# The 13 nodes come from the Ansible node map, never from a copy of it.
module "node_map" {
  source         = "./modules/node_map"
  inventory_file = "${path.module}/../inventories/node_map.yml"
}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  common_tags = merge(var.tags, {
    "growbin.app/project" = var.name
    "managed-by"          = "terraform"
  })

  nodes = module.node_map.nodes

  availability_zones = slice(sort(data.aws_availability_zones.available.names), 0, var.availability_zone_count)

  # A node's zone is derived from its name, not from its position in the map, so adding a
  # node never moves (and so never replaces) an existing one.
  node_availability_zone = {
    for name, node in local.nodes :
    name => local.availability_zones[parseint(substr(sha1(name), 0, 6), 16) % length(local.availability_zones)]
  }

  # Which instance profile a node gets: least privilege per kind of node. Nodes that run
  # application pods (api, workers) may pull the application image.
  node_iam_class = {
    for name, node in local.nodes : name => (
      node.group == "workers" ? "worker" :
      node.api_domain == "scans" ? "scans-api" :
      node.group == "api" ? "api" :
      "node"
    )
  }
}
