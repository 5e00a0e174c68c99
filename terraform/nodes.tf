# Debian 12, published by Debian (account 136693071363); its login user `admin` is the
# ansible_user of inventories/production.
data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"]

  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

resource "aws_key_pair" "admin" {
  count = var.admin_ssh_public_key == null ? 0 : 1

  key_name   = "${var.name}-admin"
  public_key = var.admin_ssh_public_key
}

resource "aws_instance" "node" {
  for_each = local.nodes

  ami                  = data.aws_ami.debian.id
  instance_type        = each.value.instance_type
  subnet_id            = aws_subnet.private[local.node_availability_zone[each.key]].id
  iam_instance_profile = aws_iam_instance_profile.node[local.node_iam_class[each.key]].name
  key_name             = one(aws_key_pair.admin[*].key_name)

  # Every flow-matrix security group the node is in: k8s_cluster, its group, itself if the
  # matrix names it (at most three, below the five per network interface AWS allows).
  vpc_security_group_ids = [for key in module.flow_rules.node_security_groups[each.key] : aws_security_group.flow[key].id]

  # Debian's images do not ship the SSM agent; without it there is no Session Manager.
  # The hostname is the inventory name so kubeadm registers the node under it.
  user_data = templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
    hostname = each.key
    region   = var.region
  })

  metadata_options {
    http_tokens = "required"
    # 2 hops: the API and worker pods reach S3 with the instance role's credentials,
    # one network namespace further than the node.
    http_put_response_hop_limit = 2
    http_endpoint               = "enabled"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = lookup(var.node_root_volume_gb, each.value.group, var.node_root_volume_gb["default"])
    encrypted   = true
  }

  tags = {
    Name                = each.key
    "growbin.app/role"  = each.value.role
    "growbin.app/group" = each.value.group
  }

  lifecycle {
    # A newer Debian image must not replace running nodes; rebuild them on purpose.
    ignore_changes = [ami, user_data]
  }
}
