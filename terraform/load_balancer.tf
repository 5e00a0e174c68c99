# The public ALB for api.<domain>, owned here and nowhere else (no load balancer controller
# runs in the cluster). It routes /api/v1/<domain> to one instance target group per API
# domain of the node map, which holds exactly the node that runs the domain, on the fixed
# NodePort of the domain's Service (growbin_api_node_port, the chart's api.<domain>.nodePort;
# externalTrafficPolicy Local keeps the client on that node).

resource "aws_lb" "api" {
  name               = "${var.name}-api"
  load_balancer_type = "application"
  internal           = false
  security_groups    = [aws_security_group.flow["edge"].id]
  subnets            = [for subnet in aws_subnet.public : subnet.id]

  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "api" {
  for_each = module.node_map.api_targets

  name        = "${var.name}-${each.key}"
  target_type = "instance"
  protocol    = "HTTP"
  port        = each.value.node_port
  vpc_id      = aws_vpc.main.id

  health_check {
    path                = "/health"
    matcher             = "200"
    healthy_threshold   = 2
    unhealthy_threshold = 3
    interval            = 15
  }
}

resource "aws_lb_target_group_attachment" "api" {
  for_each = module.node_map.api_targets

  target_group_arn = aws_lb_target_group.api[each.key].arn
  target_id        = aws_instance.node[each.value.node].id
  port             = each.value.node_port
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
  for_each = { for index, domain in sort(keys(module.node_map.api_targets)) : domain => index }

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
