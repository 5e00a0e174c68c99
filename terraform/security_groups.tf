# Security groups by role. Every rule is its own resource with literal ports, so a
# reviewer (and tests/terraform) can read exactly what is open to whom.
#
#   alb           80/443 from anywhere -> NodePorts of the nodes
#   node          every node: NodePorts from the ALB, kubelet + Calico VXLAN between nodes,
#                 node_exporter from monitoring, SSH from admin_cidrs only
#   control_plane 6443 from the VPC and admin_cidrs, etcd between control-plane nodes
#   data_service  PostgreSQL/Redis/RabbitMQ only from the nodes, exporters only from
#                 monitoring, Grafana only from admin_cidrs

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Growbin public load balancer"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_public" {
  for_each = { http = 80, https = 443 }

  security_group_id = aws_security_group.alb.id
  description       = "${upper(each.key)} from the internet (HTTP only redirects to HTTPS)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_node_ports" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Kubernetes NodePorts of the API services"
  referenced_security_group_id = aws_security_group.node.id
  ip_protocol                  = "tcp"
  from_port                    = 30000
  to_port                      = 32767
}

resource "aws_security_group" "node" {
  name        = "${var.name}-node"
  description = "Every Growbin Kubernetes node"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name                                = "${var.name}-node"
    "kubernetes.io/cluster/${var.name}" = "owned"
  }
}

resource "aws_vpc_security_group_ingress_rule" "node_ports_from_alb" {
  security_group_id            = aws_security_group.node.id
  description                  = "NodePorts, only from the ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = 30000
  to_port                      = 32767
}

resource "aws_vpc_security_group_ingress_rule" "node_kubelet" {
  security_group_id            = aws_security_group.node.id
  description                  = "kubelet API between nodes (logs, exec, metrics)"
  referenced_security_group_id = aws_security_group.node.id
  ip_protocol                  = "tcp"
  from_port                    = 10250
  to_port                      = 10250
}

resource "aws_vpc_security_group_ingress_rule" "node_calico_vxlan" {
  security_group_id            = aws_security_group.node.id
  description                  = "Calico VXLAN pod network between nodes"
  referenced_security_group_id = aws_security_group.node.id
  ip_protocol                  = "udp"
  from_port                    = 4789
  to_port                      = 4789
}

resource "aws_vpc_security_group_ingress_rule" "node_exporter_from_monitoring" {
  security_group_id            = aws_security_group.node.id
  description                  = "node_exporter, scraped by Prometheus"
  referenced_security_group_id = aws_security_group.data_service["monitoring"].id
  ip_protocol                  = "tcp"
  from_port                    = 9100
  to_port                      = 9100
}

resource "aws_vpc_security_group_ingress_rule" "node_ssh_from_admin" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.node.id
  description       = "SSH from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

# Nodes fetch packages, images and model files over HTTP(S) through the NAT gateway and
# talk to each other freely inside the VPC; nothing else leaves.
resource "aws_vpc_security_group_egress_rule" "node_web" {
  for_each = { http = 80, https = 443 }

  security_group_id = aws_security_group.node.id
  description       = "${upper(each.key)} to the internet through NAT"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
}

resource "aws_vpc_security_group_egress_rule" "node_vpc" {
  security_group_id = aws_security_group.node.id
  description       = "Anything inside the VPC (cluster traffic, DNS resolver)"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

resource "aws_security_group" "control_plane" {
  name        = "${var.name}-control-plane"
  description = "Kubernetes control-plane nodes"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-control-plane" }
}

resource "aws_vpc_security_group_ingress_rule" "control_plane_api_from_vpc" {
  security_group_id = aws_security_group.control_plane.id
  description       = "Kubernetes API from inside the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 6443
  to_port           = 6443
}

resource "aws_vpc_security_group_ingress_rule" "control_plane_api_from_admin" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.control_plane.id
  description       = "Kubernetes API from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 6443
  to_port           = 6443
}

resource "aws_vpc_security_group_ingress_rule" "control_plane_etcd" {
  security_group_id            = aws_security_group.control_plane.id
  description                  = "etcd peers and clients between control-plane nodes"
  referenced_security_group_id = aws_security_group.control_plane.id
  ip_protocol                  = "tcp"
  from_port                    = 2379
  to_port                      = 2380
}

resource "aws_security_group" "data_service" {
  for_each = local.data_service_groups

  name        = "${var.name}-${each.key}"
  description = "Growbin ${each.key} node"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-${each.key}" }
}

resource "aws_vpc_security_group_ingress_rule" "data_service_from_nodes" {
  for_each = { postgresql = 5432, redis = 6379, rabbitmq = 5672 }

  security_group_id            = aws_security_group.data_service[each.key].id
  description                  = "${each.key} clients: pods and services on the cluster nodes"
  referenced_security_group_id = aws_security_group.node.id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}

resource "aws_vpc_security_group_ingress_rule" "data_service_exporter_from_monitoring" {
  for_each = { postgresql = 9187, redis = 9121, rabbitmq = 15692 }

  security_group_id            = aws_security_group.data_service[each.key].id
  description                  = "${each.key} metrics, scraped by Prometheus"
  referenced_security_group_id = aws_security_group.data_service["monitoring"].id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}

# Grafana is the operators' window; Prometheus and Alertmanager stay reachable only
# through Grafana or an SSM port forward.
resource "aws_vpc_security_group_ingress_rule" "grafana_from_admin" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.data_service["monitoring"].id
  description       = "Grafana from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 3000
  to_port           = 3000
}
