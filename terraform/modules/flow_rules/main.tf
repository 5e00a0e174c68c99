# Turns the flow matrix (inventories/flow_matrix.yml) into security-group data: which groups
# exist, which node is in which, and one ingress rule per (flow, source). The same file
# drives the nftables rules of the systemd runtime, so the two cannot disagree. Pure
# expressions: no provider, so it can be evaluated on its own (tests/terraform does).
#
# Every name the matrix uses becomes one security group key:
#   edge         the ALB (the TLS edge of production); nodes are never in it
#   k8s_cluster  every node (`all` is the same set on AWS: the node map has only the cluster)
#   other        the nodes of that node-map group (or parent group), or that single host

locals {
  matrix = yamldecode(file(var.flow_matrix_file)).growbin_flow_matrix
  flows  = [for flow in local.matrix : flow if contains(flow.runtimes, var.runtime)]

  aliases = { all = "k8s_cluster" }

  # `from` is a list of names or the string "any"; flatten() reads both the same way.
  flow_sources = {
    for flow in local.flows : flow.name => [for source in flatten([flow.from]) : source if source != "any"]
  }

  names = distinct([
    for name in flatten([for flow in local.flows : concat([flow.to], local.flow_sources[flow.name])]) :
    lookup(local.aliases, name, name)
  ])

  members = {
    for name in local.names : name => (
      name == "edge" ? [] :
      name == "k8s_cluster" ? sort(keys(var.nodes)) :
      sort([
        for node, facts in var.nodes : node
        if node == name || facts.group == name || facts.parent_group == name
      ])
    )
  }

  unknown_names = [for name, nodes in local.members : name if name != "edge" && length(nodes) == 0]

  # Rules from other security groups, keyed "<flow>/<source>".
  group_rules = merge([
    for flow in local.flows : {
      for source in local.flow_sources[flow.name] :
      "${flow.name}/${lookup(local.aliases, source, source)}" => {
        security_group        = lookup(local.aliases, flow.to, flow.to)
        source_security_group = lookup(local.aliases, source, source)
        protocol              = try(flow.protocol, "tcp")
        port                  = flow.port
        description           = "${flow.name} from ${source}"
      }
    }
  ]...)

  # Rules open to the internet (`from: any`), keyed by flow name.
  world_rules = {
    for flow in local.flows : flow.name => {
      security_group = lookup(local.aliases, flow.to, flow.to)
      protocol       = try(flow.protocol, "tcp")
      port           = flow.port
      description    = "${flow.name} from anywhere"
    } if contains(flatten([flow.from]), "any")
  }
}
