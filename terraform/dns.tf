# The hosted zone of var.domain_name exists already (registered outside Terraform).
data "aws_route53_zone" "public" {
  name         = var.domain_name
  private_zone = false
}

# growbin.app and *.growbin.app in the main region, for the ALB.
module "certificate" {
  source = "./modules/acm_certificate"

  domain_name               = var.domain_name
  subject_alternative_names = ["*.${var.domain_name}"]
  zone_id                   = data.aws_route53_zone.public.zone_id
  tags                      = { Name = var.domain_name }
}

# The same names in us-east-1, for CloudFront.
module "cdn_certificate" {
  source = "./modules/acm_certificate"
  providers = {
    aws = aws.us_east_1
  }

  domain_name               = var.domain_name
  subject_alternative_names = ["*.${var.domain_name}"]
  zone_id                   = data.aws_route53_zone.public.zone_id
  tags                      = { Name = "${var.domain_name} (CloudFront)" }
}

resource "aws_route53_record" "api" {
  zone_id = data.aws_route53_zone.public.zone_id
  name    = "api.${var.domain_name}"
  type    = "A"

  alias {
    name                   = aws_lb.api.dns_name
    zone_id                = aws_lb.api.zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "images" {
  zone_id = data.aws_route53_zone.public.zone_id
  name    = "images.${var.domain_name}"
  type    = "A"

  alias {
    name                   = aws_cloudfront_distribution.images.domain_name
    zone_id                = aws_cloudfront_distribution.images.hosted_zone_id
    evaluate_target_health = false
  }
}
