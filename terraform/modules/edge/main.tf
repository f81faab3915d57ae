# The public entry: an internet-facing Application Load Balancer in front of the gateway. HTTPS
# only; an idle timeout well above the SSE heartbeat and the WebSocket ping interval, so
# Server-Sent Events and WebSocket connections (which an ALB carries natively, /v1/ws included)
# stay open; only the public API (/v1/*) and the web console (/console) reach the gateway, the
# probes and the API docs only when asked for; a WAF with a per-address rate limit and AWS
# managed rules.

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Public HTTPS to the load balancer; from it only to the gateway"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.key}"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "to_gateway" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the gateway tasks"
  referenced_security_group_id = var.gateway_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_150:deletion protection follows deletion_protection (prod: on); dev may be torn down
  #checkov:skip=CKV2_AWS_76:Log4j is covered by AWSManagedRulesKnownBadInputsRuleSet; the AnonymousIpList the check also wants would block API clients calling from cloud hosts
  name                       = var.name
  internal                   = false
  load_balancer_type         = "application"
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  idle_timeout               = var.idle_timeout_seconds
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = var.access_log_bucket
    prefix  = "alb"
    enabled = true
  }

  tags = var.tags
}

resource "aws_lb_target_group" "gateway" {
  name                 = "${var.name}-gateway"
  port                 = 8000
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay_seconds

  # Ready, not merely alive: /readyz answers 503 while the gateway starts or PostgreSQL is out.
  # Redis is not critical to it (without Redis only POST /v1/ws-tickets and ticket logins answer
  # 503), so a Redis outage does not take the gateway out of the target group.
  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  # Never reached once the rules below exist (the last one answers every other path); it stays
  # "forward" so that adding the rules to a running balancer leaves no moment without a route.
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.gateway.arn
  }

  tags = var.tags
}

# --- What the load balancer passes to the gateway: an allow-list ---
#
# The public API and the web console, and the API docs (/docs, /openapi.json) and the probes
# (/healthz, /readyz: each dependency's state) only with public_api_docs / public_probes; every
# other path is answered here with a 404. An allow-list rather than 404 rules for the hidden
# paths: those would have to foresee every spelling the gateway decodes to one (it
# percent-decodes a path before routing: /%72eadyz is /readyz to it). The target group's health
# check goes to the tasks directly, so /readyz still decides which tasks get traffic.

locals {
  passed_paths = merge(
    {
      api     = { priority = 10, paths = ["/v1/*"] }
      console = { priority = 20, paths = ["/console", "/console/*"] }
    },
    # FastAPI's Swagger UI, its OAuth2 redirect page and the document it renders
    var.public_api_docs ? { docs = { priority = 30, paths = ["/docs", "/docs/*", "/openapi.json"] } } : {},
    var.public_probes ? { probes = { priority = 40, paths = ["/healthz", "/readyz"] } } : {},
  )
  # shaped as the gateway's own 404 (problem+json, which a fixed response cannot name as its type)
  not_found = jsonencode({ type = "about:blank", title = "Not Found", status = 404 })
}

resource "aws_lb_listener_rule" "pass" {
  for_each = local.passed_paths

  listener_arn = aws_lb_listener.https.arn
  priority     = each.value.priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.gateway.arn
  }

  condition {
    path_pattern {
      values = each.value.paths
    }
  }

  tags = var.tags
}

resource "aws_lb_listener_rule" "not_found" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1000

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.not_found
      status_code  = "404"
    }
  }

  condition {
    path_pattern {
      values = ["/*"]
    }
  }

  tags = var.tags

  # after the rules passing /v1 and /console exist, or they would answer 404 meanwhile
  depends_on = [aws_lb_listener_rule.pass]
}

# --- WAF: a per-address rate limit, AWS managed common rules and known bad inputs ---

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "Relay public API"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # The outer fence: one address sending more than rate_limit_per_5_minutes requests in five
  # minutes is refused here until its rate falls, before the managed rules and before the
  # gateway, whose per-tenant limits (Redis) apply to valid keys only and still cost it a
  # request each. The limit sits well above what one tenant may send (50 requests/s is 15,000 in
  # five minutes): addresses are shared (NAT, and the console's /v1 calls arrive from
  # CloudFront's addresses), and the gateway is the one that limits tenants.
  rule {
    name     = "rate-per-address"
    priority = 0
    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "rate-limited"
          response_header {
            name  = "Retry-After"
            value = tostring(var.rate_limit_retry_after_seconds)
          }
        }
      }
    }
    statement {
      rate_based_statement {
        limit                 = var.rate_limit_per_5_minutes
        evaluation_window_sec = 300
        aggregate_key_type    = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-per-address"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "common"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
        # Task prompts are larger than the rule set's 8 KB body limit; the gateway enforces
        # its own (RELAY_MAX_BODY_BYTES).
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  # The 429's body, shaped as the gateway's problem responses (WAF offers application/json, not
  # application/problem+json).
  custom_response_body {
    key          = "rate-limited"
    content_type = "APPLICATION_JSON"
    content = jsonencode({
      type   = "about:blank"
      title  = "Too Many Requests"
      status = 429
      detail = "Too many requests from this address; try again in ${var.rate_limit_retry_after_seconds} s."
    })
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

# WAF log group names must start with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # API keys travel in this header; WAF logs must not keep them.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}
