# `nodes` is what scripts/terraform_inventory.py turns into inventories/production/hosts.yml.
output "nodes" {
  description = "Node name => addresses, instance and node-map facts of each EC2 node."
  value = {
    for name, instance in aws_instance.node : name => {
      instance_id       = instance.id
      private_ip        = instance.private_ip
      private_dns       = instance.private_dns
      public_ip         = instance.public_ip
      availability_zone = instance.availability_zone
      instance_type     = instance.instance_type
      role              = local.nodes[name].role
      group             = local.nodes[name].group
    }
  }
}

output "region" {
  description = "AWS region of the nodes (the SSM proxy command needs it)."
  value       = var.region
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.main.id
}

output "private_subnet_ids" {
  description = "Availability zone => private subnet ID of the nodes."
  value       = { for zone, subnet in aws_subnet.private : zone => subnet.id }
}

output "api_url" {
  description = "Public URL of the API."
  value       = "https://${aws_route53_record.api.fqdn}"
}

output "alb_dns_name" {
  description = "DNS name of the ALB behind api.<domain>."
  value       = aws_lb.api.dns_name
}

output "alb_security_group_id" {
  description = "Security group of the ALB (`edge` in the flow matrix; the only source allowed on the NodePorts)."
  value       = aws_security_group.flow["edge"].id
}

output "alb_subnet_cidrs" {
  description = "CIDRs of the public subnets the ALB sends from: the only proxies the API may trust X-Forwarded-For from (growbin_trusted_proxy_cidrs)."
  value       = sort([for subnet in aws_subnet.public : subnet.cidr_block])
}

output "alb_target_group_arns" {
  description = "API domain => target group ARN (each holds the node of that domain on its NodePort), e.g. for `aws elbv2 describe-target-health`."
  value       = { for domain, group in aws_lb_target_group.api : domain => group.arn }
}

output "app_image_repository_url" {
  description = "ECR repository of the application image (growbin_app_image_repository); push with `docker push <url>:<tag>`, deploy by digest."
  value       = aws_ecr_repository.app.repository_url
}

output "images_bucket" {
  description = "Name of the images bucket (GROWBIN_STORAGE__BUCKET)."
  value       = aws_s3_bucket.images.bucket
}

output "images_public_base_url" {
  description = "Public base URL of the images (GROWBIN_STORAGE__PUBLIC_BASE_URL)."
  value       = "https://${aws_route53_record.images.fqdn}"
}

output "certificate_arn" {
  description = "ACM certificate of the ALB (main region)."
  value       = module.certificate.certificate_arn
}

output "cdn_certificate_arn" {
  description = "ACM certificate of CloudFront (us-east-1)."
  value       = module.cdn_certificate.certificate_arn
}
