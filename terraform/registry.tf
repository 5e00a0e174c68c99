# The application image's registry. Tags are immutable, so a tag names one image forever;
# production deploys by digest anyway (the chart refuses an image without one). Every push
# is scanned; layers are encrypted with the account's ECR KMS key.
resource "aws_ecr_repository" "app" {
  name                 = "${var.name}/app"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}
