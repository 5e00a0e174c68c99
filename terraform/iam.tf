# One instance role per kind of node (see local.node_iam_class). Every node can be reached
# through SSM; only the nodes that need more get more:
#   worker        read/write objects of the images bucket (ingest, thumbnails)
#   scans-api     put/get objects of the images bucket (it signs the clients' upload URLs)
#   control-plane register nodes in the ALB's target groups (AWS Load Balancer Controller,
#                 TargetGroupBinding only: the load balancer itself is managed here)
#   node          nothing else

locals {
  node_iam_classes = toset(["node", "scans-api", "worker", "control-plane"])
}

data "aws_iam_policy_document" "ec2_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  for_each = local.node_iam_classes

  name               = "${var.name}-${each.key}"
  description        = "Growbin ${each.key} EC2 nodes"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume_role.json
}

resource "aws_iam_role_policy_attachment" "node_ssm" {
  for_each = aws_iam_role.node

  role       = each.value.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  for_each = aws_iam_role.node

  name = each.value.name
  role = each.value.name
}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "images_worker" {
  statement {
    sid       = "ListImages"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.images.arn]
  }

  statement {
    sid = "ReadWriteImages"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = ["${aws_s3_bucket.images.arn}/*"]
  }
}

resource "aws_iam_role_policy" "images_worker" {
  name   = "images-read-write"
  role   = aws_iam_role.node["worker"].name
  policy = data.aws_iam_policy_document.images_worker.json
}

data "aws_iam_policy_document" "images_presign" {
  statement {
    sid       = "SignUploadsAndReads"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${aws_s3_bucket.images.arn}/*"]
  }
}

resource "aws_iam_role_policy" "images_presign" {
  name   = "images-presign"
  role   = aws_iam_role.node["scans-api"].name
  policy = data.aws_iam_policy_document.images_presign.json
}

data "aws_iam_policy_document" "load_balancer_controller" {
  statement {
    sid = "Discover"
    actions = [
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "RegisterNodesInGrowbinTargetGroups"
    actions   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
    resources = [for group in aws_lb_target_group.api : group.arn]
  }
}

resource "aws_iam_role_policy" "load_balancer_controller" {
  name   = "aws-load-balancer-controller"
  role   = aws_iam_role.node["control-plane"].name
  policy = data.aws_iam_policy_document.load_balancer_controller.json
}
