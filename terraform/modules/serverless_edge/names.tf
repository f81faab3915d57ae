# Optional custom names for the two APIs: domain_name for the HTTP API ("api") and
# ws_domain_name for the WebSocket API ("ws"). Each is a regional custom domain (TLS 1.2) mapped
# to its API's stage, with a certificate (certificate_arn, or one issued and validated per name in
# route53_zone_id) and, given the zone, alias A and AAAA records.

locals {
  names = { for kind, name in { api = var.domain_name, ws = var.ws_domain_name } : kind => name if name != null }
  # one certificate per name, issued and validated by DNS in the zone when none is given
  issued = var.certificate_arn == null && var.route53_zone_id != null ? local.names : {}
  certificate_arns = {
    for kind in keys(local.names) :
    kind => contains(keys(local.issued), kind) ? aws_acm_certificate_validation.this[kind].certificate_arn : var.certificate_arn
  }
  aliases = var.route53_zone_id == null ? {} : merge([
    for kind, name in local.names : { for type in ["A", "AAAA"] : "${kind}-${type}" => { kind = kind, name = name, type = type } }
  ]...)
  stages = {
    api = { api_id = aws_apigatewayv2_api.http.id, stage = aws_apigatewayv2_stage.default.id }
    ws  = { api_id = aws_apigatewayv2_api.ws.id, stage = aws_apigatewayv2_stage.ws.id }
  }
}

resource "aws_acm_certificate" "this" {
  for_each = local.issued

  domain_name       = each.value
  validation_method = "DNS"

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true
  }

  tags = var.tags
}

# One name on each certificate, so one validation record (its key is known when planning).
resource "aws_route53_record" "certificate_validation" {
  for_each = local.issued

  zone_id         = var.route53_zone_id
  name            = one(aws_acm_certificate.this[each.key].domain_validation_options).resource_record_name
  type            = one(aws_acm_certificate.this[each.key].domain_validation_options).resource_record_type
  records         = [one(aws_acm_certificate.this[each.key].domain_validation_options).resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  for_each = local.issued

  certificate_arn         = aws_acm_certificate.this[each.key].arn
  validation_record_fqdns = [aws_route53_record.certificate_validation[each.key].fqdn]
}

resource "aws_apigatewayv2_domain_name" "this" {
  for_each = local.names

  domain_name = each.value

  domain_name_configuration {
    certificate_arn = local.certificate_arns[each.key]
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
    ip_address_type = "dualstack"
  }

  lifecycle {
    precondition {
      condition     = local.certificate_arns[each.key] != null
      error_message = "domain_name and ws_domain_name need certificate_arn (an ACM certificate in this region covering them), or route53_zone_id to issue one per name."
    }
  }

  tags = var.tags
}

resource "aws_apigatewayv2_api_mapping" "this" {
  for_each = local.names

  api_id      = local.stages[each.key].api_id
  domain_name = aws_apigatewayv2_domain_name.this[each.key].id
  stage       = local.stages[each.key].stage
}

resource "aws_route53_record" "alias" {
  for_each = local.aliases

  zone_id = var.route53_zone_id
  name    = each.value.name
  type    = each.value.type
  # a record made by hand for the load balancer (edge = "alb") is taken over, not a conflict
  allow_overwrite = true

  alias {
    name                   = aws_apigatewayv2_domain_name.this[each.value.kind].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.this[each.value.kind].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}

# Before the WebSocket API, the HTTP API's name was the only one: its resources move to "api".
moved {
  from = aws_acm_certificate.api[0]
  to   = aws_acm_certificate.this["api"]
}

moved {
  from = aws_route53_record.certificate_validation[0]
  to   = aws_route53_record.certificate_validation["api"]
}

moved {
  from = aws_acm_certificate_validation.api[0]
  to   = aws_acm_certificate_validation.this["api"]
}

moved {
  from = aws_apigatewayv2_domain_name.api[0]
  to   = aws_apigatewayv2_domain_name.this["api"]
}

moved {
  from = aws_apigatewayv2_api_mapping.api[0]
  to   = aws_apigatewayv2_api_mapping.this["api"]
}

moved {
  from = aws_route53_record.api["A"]
  to   = aws_route53_record.alias["api-A"]
}

moved {
  from = aws_route53_record.api["AAAA"]
  to   = aws_route53_record.alias["api-AAAA"]
}
