# Security groups come from the flow matrix (inventories/flow_matrix.yml), the data the
# nftables rules of the systemd runtime and the chart's NetworkPolicies come from too.
# modules/flow_rules takes its kubernetes-runtime flows (the production runtime) and gives
# one security group per name the matrix uses (a node-map group, a single host, `edge` =
# the ALB, `k8s_cluster` = every node) and one ingress rule per (flow, source):
#
#   edge         80/443 from anywhere; egress only to the API NodePort of each API node
#   k8s_cluster  kubelet, Calico Typha and VXLAN, node_exporter (see the matrix)
#   masters      Kubernetes API, etcd metrics
#   <api host>   its domain's NodePort, only from the ALB
#   data groups  PostgreSQL/Redis/RabbitMQ from the API/worker nodes, exporters from monitoring
#
# Written here by hand is only what the matrix leaves out on purpose: operator access from
# admin_cidrs (SSH, the Kubernetes API, Grafana) and the nodes' egress.

module "flow_rules" {
  source = "./modules/flow_rules"

  flow_matrix_file = "${path.module}/../inventories/flow_matrix.yml"
  nodes            = module.node_map.nodes
  runtime          = "kubernetes"
}

resource "aws_security_group" "flow" {
  for_each = module.flow_rules.security_groups

  name        = "${var.name}-${each.key}"
  description = each.key == "edge" ? "Growbin public load balancer (edge of the flow matrix)" : "Growbin nodes in ${each.key} (flow matrix)"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-${each.key}" }
}

resource "aws_vpc_security_group_ingress_rule" "flow" {
  for_each = module.flow_rules.group_rules

  security_group_id            = aws_security_group.flow[each.value.security_group].id
  description                  = each.value.description
  referenced_security_group_id = aws_security_group.flow[each.value.source_security_group].id
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
}

# `from: any` flows: only the edge's 80/443 (HTTP only redirects to HTTPS).
resource "aws_vpc_security_group_ingress_rule" "flow_from_anywhere" {
  for_each = module.flow_rules.world_rules

  security_group_id = aws_security_group.flow[each.value.security_group].id
  description       = each.value.description
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = each.value.protocol
  from_port         = each.value.port
  to_port           = each.value.port
}

# The ALB sends only what the matrix lets it send: each API node's NodePort.
resource "aws_vpc_security_group_egress_rule" "edge_to_flow_targets" {
  for_each = module.flow_rules.edge_egress_rules

  security_group_id            = aws_security_group.flow["edge"].id
  description                  = each.value.description
  referenced_security_group_id = aws_security_group.flow[each.value.security_group].id
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
}

# --- operator access (admin_cidrs: VPN or peered networks; none by default, use SSM) ---

resource "aws_vpc_security_group_ingress_rule" "node_ssh_from_admin" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.flow["k8s_cluster"].id
  description       = "SSH from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

resource "aws_vpc_security_group_ingress_rule" "control_plane_api_from_admin" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.flow["masters"].id
  description       = "Kubernetes API from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 6443
  to_port           = 6443
}

# Grafana is the operators' window; Prometheus and Alertmanager stay reachable only
# through Grafana or an SSM port forward.
resource "aws_vpc_security_group_ingress_rule" "grafana_from_admin" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.flow["monitoring"].id
  description       = "Grafana from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 3000
  to_port           = 3000
}

# --- node egress ---

# Nodes fetch packages, images (ECR, registries) and model files over HTTP(S) through the
# NAT gateway and talk to each other freely inside the VPC (the ingress rules above decide
# what arrives); nothing else leaves.
resource "aws_vpc_security_group_egress_rule" "node_web" {
  for_each = { http = 80, https = 443 }

  security_group_id = aws_security_group.flow["k8s_cluster"].id
  description       = "${upper(each.key)} to the internet through NAT"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
}

resource "aws_vpc_security_group_egress_rule" "node_vpc" {
  security_group_id = aws_security_group.flow["k8s_cluster"].id
  description       = "Anything inside the VPC (cluster traffic, DNS resolver)"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}
