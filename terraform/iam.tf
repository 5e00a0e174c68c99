# One instance role per kind of node (see local.node_iam_class). Every node can be reached
# through SSM; only the nodes that need more get more:
#   worker        read/write objects of the images bucket (ingest, thumbnails); pull the app image
#   scans-api     put/get objects of the images bucket (it signs the clients' upload URLs); pull the app image
#   api           pull the app image
#   node          nothing else (control plane, data services, monitoring)
# No role touches the load balancer: its targets are attached by Terraform (load_balancer.tf).

locals {
  node_iam_classes = toset(["node", "api", "scans-api", "worker"])
  # The classes whose nodes run application pods.
  app_image_iam_classes = toset(["api", "scans-api", "worker"])
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

# kubelet's ECR credential provider exchanges the node role for a registry token; the
# token call cannot be scoped to a repository, the image reads can.
data "aws_iam_policy_document" "app_image_pull" {
  statement {
    sid       = "RegistryToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PullTheAppImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.app.arn]
  }
}

resource "aws_iam_role_policy" "app_image_pull" {
  for_each = local.app_image_iam_classes

  name   = "app-image-pull"
  role   = aws_iam_role.node[each.key].name
  policy = data.aws_iam_policy_document.app_image_pull.json
}
