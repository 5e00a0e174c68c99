# The public ALB for api.<domain>. It routes /api/v1/<domain> to one target group per API
# domain of the node map; the AWS Load Balancer Controller (TargetGroupBinding) registers
# the Service's NodePort on the nodes, so no Kubernetes object owns this load balancer.

resource "aws_lb" "api" {
  name               = "${var.name}-api"
  load_balancer_type = "application"
  internal           = false
  security_groups    = [aws_security_group.alb.id]
  subnets            = [for subnet in aws_subnet.public : subnet.id]

  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "api" {
  for_each = local.api_domains

  name        = "${var.name}-${each.key}"
  target_type = "instance"
  protocol    = "HTTP"
  # The controller registers each target with the Service's NodePort; this is a default.
  port   = 30000
  vpc_id = aws_vpc.main.id

  health_check {
    path                = "/health"
    matcher             = "200"
    healthy_threshold   = 2
    unhealthy_threshold = 3
    interval            = 15
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = module.certificate.certificate_arn

  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      status_code  = "404"
      message_body = "{\"error\":{\"code\":\"not_found\",\"message\":\"No such route\"}}"
    }
  }
}

resource "aws_lb_listener_rule" "api" {
  # Rule priorities must be unique: the sorted position of the domain gives one.
  for_each = { for index, domain in sort(local.api_domains) : domain => index }

  listener_arn = aws_lb_listener.https.arn
  priority     = 100 + each.value

  condition {
    path_pattern {
      values = ["/api/v1/${each.key}", "/api/v1/${each.key}/*"]
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api[each.key].arn
  }
}
