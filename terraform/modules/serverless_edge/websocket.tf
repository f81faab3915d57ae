# The seed's live channel on this edge: an API Gateway WebSocket API whose routes and $connect
# authorizer are the gateway's WebSocket function (gateway.lambda_ws.handler, the same image and
# environment as the HTTP function), and the DynamoDB table of connections and subscriptions that
# the notifier keeps and delivers from (notifier/edge.py, ADR 0016).
#
# - $connect is authorised by a REQUEST authorizer: the same credentials as /v1/ws (a key in
#   Authorization, or ?ticket=). It has no identity sources, because either may come; so API
#   Gateway caches no decision and the function sees every attempt (and refuses with 401).
# - $connect, $disconnect and $default (every client frame) go to the function, which tells the
#   notifier; the notifier sends every frame the client gets with PostToConnection through the
#   stage's management endpoint (its role may do that on this stage's connections only).
# - The execute-api endpoint stays enabled even with ws_domain_name: the management API is
#   reached there.

locals {
  ws_management_endpoint = "https://${aws_apigatewayv2_api.ws.id}.execute-api.${local.region}.amazonaws.com/${aws_apigatewayv2_stage.ws.name}"
}

# --- Connections and subscriptions (notifier/edge_aws.py declares the items) ---

resource "aws_kms_key" "connections" {
  #checkov:skip=CKV2_AWS_64:the AWS default key policy (the account administers it); use is granted only by role policies naming this key, through DynamoDB
  description             = "${var.name} WebSocket connections"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_kms_alias" "connections" {
  name          = "alias/${var.name}-ws-connections"
  target_key_id = aws_kms_key.connections.key_id
}

resource "aws_dynamodb_table" "connections" {
  name         = "${var.name}-ws-connections"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk" # conn#<connection id>
  range_key    = "sk" # conn | all | task#<task id>

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "task_id"
    type = "S"
  }
  attribute {
    name = "tenant_all"
    type = "S"
  }

  # sparse: only a task subscription has task_id, only a "*" subscription has tenant_all
  global_secondary_index {
    name            = "by_task"
    hash_key        = "task_id"
    range_key       = "pk"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by_tenant"
    hash_key        = "tenant_all"
    range_key       = "pk"
    projection_type = "ALL"
  }

  # every item outlives its connection by a little (API Gateway ends a connection after 2 h)
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.connections.arn
  }

  point_in_time_recovery {
    enabled = true
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

# --- The API ---

resource "aws_cloudwatch_log_group" "ws_access" {
  name              = "/relay/${var.env}/ws-api-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_api" "ws" {
  name                       = "${var.name}-ws"
  description                = "Relay ${var.env} live updates (WebSocket API -> gateway Lambda, notifier)"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.type" # one $default route: the app reads the frame
  tags                       = var.tags
}

resource "aws_apigatewayv2_authorizer" "ws" {
  name             = "tenant"
  api_id           = aws_apigatewayv2_api.ws.id
  authorizer_type  = "REQUEST"
  authorizer_uri   = aws_lambda_function.gateway["ws"].invoke_arn
  identity_sources = []
}

resource "aws_apigatewayv2_integration" "ws" {
  api_id               = aws_apigatewayv2_api.ws.id
  integration_type     = "AWS_PROXY"
  integration_method   = "POST"
  integration_uri      = aws_lambda_function.gateway["ws"].invoke_arn
  timeout_milliseconds = var.timeout_seconds * 1000
}

resource "aws_apigatewayv2_route" "ws" {
  #checkov:skip=CKV_AWS_309:$connect is authorised (the REQUEST authorizer); $disconnect and $default belong to a connection already authorised, whose tenant API Gateway passes on
  for_each = toset(["$connect", "$disconnect", "$default"])

  api_id             = aws_apigatewayv2_api.ws.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.ws.id}"
  authorization_type = each.key == "$connect" ? "CUSTOM" : "NONE"
  authorizer_id      = each.key == "$connect" ? aws_apigatewayv2_authorizer.ws.id : null
}

resource "aws_apigatewayv2_stage" "ws" {
  #checkov:skip=CKV2_AWS_51:clients are browsers, the SDK and the CLI, authenticated by API key or ticket at $connect; mutual TLS would need a client certificate in each
  api_id      = aws_apigatewayv2_api.ws.id
  name        = var.ws_stage_name
  auto_deploy = true

  # No request headers (Authorization carries API keys) and no query strings (?ticket=).
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.ws_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      ip                 = "$context.identity.sourceIp"
      eventType          = "$context.eventType"
      routeKey           = "$context.routeKey"
      connectionId       = "$context.connectionId"
      status             = "$context.status"
      tenant             = "$context.authorizer.tenant_id"
      integrationLatency = "$context.integrationLatency"
      errorMessage       = "$context.error.message"
      authorizerError    = "$context.authorizer.error"
      integrationError   = "$context.integrationErrorMessage"
    })
  }

  default_route_settings {
    throttling_burst_limit = var.ws_throttling_burst_limit
    throttling_rate_limit  = var.ws_throttling_rate_limit
  }

  tags = var.tags
}

# The routes and the authorizer (…/authorizers/<id>) invoke the WebSocket function.
resource "aws_lambda_permission" "ws" {
  statement_id  = "AllowWebSocketApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.gateway["ws"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.ws.execution_arn}/*"
}

# --- Alarms: failed routes and authorizer calls, slow integration ---

resource "aws_cloudwatch_metric_alarm" "ws_errors" {
  for_each = {
    IntegrationError = "route calls the gateway's WebSocket function failed (a crash, a timeout, a malformed answer)"
    ExecutionError   = "calls API Gateway could not make to the WebSocket function (permission, throttling, authorizer failure)"
  }

  alarm_name          = "${var.name}-ws-api-${lower(each.key)}"
  alarm_description   = "More than ${var.ws_errors_threshold} ${each.value} in 5 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = each.key
  dimensions          = { ApiId = aws_apigatewayv2_api.ws.id, Stage = aws_apigatewayv2_stage.ws.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.ws_errors_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "ws_integration_latency" {
  alarm_name          = "${var.name}-ws-api-integration-latency-p99"
  alarm_description   = "p99 of the WebSocket function's latency above ${var.integration_latency_p99_threshold_ms} ms for 15 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = "IntegrationLatency"
  dimensions          = { ApiId = aws_apigatewayv2_api.ws.id, Stage = aws_apigatewayv2_stage.ws.name }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.integration_latency_p99_threshold_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
