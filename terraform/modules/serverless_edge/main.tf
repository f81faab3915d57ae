# The seed's serverless HTTP edge (edge = "apigateway"): an API Gateway HTTP API in front of the
# gateway run as a Lambda function -- the same FastAPI app, from the same image as on ECS, through
# an ASGI adapter (gateway.lambda_http.handler, started by awslambdaric). One $default route
# sends every path to it: the app does its own routing and authentication, as behind the ALB.
#
# The function runs in the private subnets with the gateway's security group, so it reaches the
# tasks, artifacts and notifier services (Cloud Map names), PostgreSQL and Redis exactly as the
# ECS gateway does. It is told the gateway's plain environment; its secrets are never in plain
# variables: RELAY_LAMBDA_SECRETS maps each variable to a Secrets Manager reference in the ECS
# form (<secret-arn> or <secret-arn>:<json-key>::), which the function reads at cold start with
# its own role (allowed those secrets only).
#
# Server-Sent Events are not offered on this edge (API Gateway buffers a response); live updates
# come through the WebSocket API instead (websocket.tf). Custom names, their certificates and
# Route 53 records for both APIs are in names.tf.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # The two functions: the same image and environment, one handler each.
  functions = {
    http = { name = "${var.name}-gateway", handler = "gateway.lambda_http.handler", api = "HTTP API" }
    ws   = { name = "${var.name}-gateway-ws", handler = "gateway.lambda_ws.handler", api = "WebSocket API" }
  }
  region        = data.aws_region.current.name
  account       = data.aws_caller_identity.current.account_id
  partition     = data.aws_partition.current.partition
  function_arns = [for function in values(local.functions) : "arn:${local.partition}:lambda:${local.region}:${local.account}:function:${function.name}"]

  custom_domain = var.domain_name != null

  environment = merge(var.environment, {
    RELAY_ENV        = var.env
    RELAY_LOG_FORMAT = "json"
    # variable -> "<secret-arn>" or "<secret-arn>:<json-key>::", read at cold start
    RELAY_LAMBDA_SECRETS = jsonencode(var.secrets)
  })

  alarm_actions = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
}

# --- Logs: each function's own group (Lambda's default name) and the API's access logs ---

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/relay/${var.env}/http-api-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# --- The functions' role (HTTP and WebSocket: the same app, the same needs): their own logs,
# their network interfaces, traces, their own secrets ---

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = local.functions.http.name
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.function : "${group.arn}:*"]
  }

  # AWSLambdaVPCAccessExecutionRole's actions, narrowed to this account and region, the
  # function's subnets and security groups. The Describe actions have no resource-level scope.
  statement {
    sid       = "DescribeNetwork"
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    resources = ["*"]
  }
  statement {
    sid     = "CreateNetworkInterfaces"
    actions = ["ec2:CreateNetworkInterface"]
    resources = concat(
      ["arn:${local.partition}:ec2:${local.region}:${local.account}:network-interface/*"],
      [for id in var.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account}:subnet/${id}"],
      [for id in var.security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account}:security-group/${id}"],
    )
  }
  statement {
    sid       = "ManageNetworkInterfaces"
    actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account}:network-interface/*"]
  }

  # Active tracing: Lambda sends the function's segments to X-Ray (no resource-level scope).
  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadOwnSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }
  dynamic "statement" {
    for_each = length(var.secret_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptOwnSecrets"
      actions   = ["kms:Decrypt"]
      resources = var.secret_kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "gateway"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

# --- The image: Lambda pulls it from the gateway's repository, for these functions only ---

data "aws_iam_policy_document" "repository" {
  count = var.repository_name == null ? 0 : 1

  statement {
    sid     = "LambdaPullsGatewayImage"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = local.function_arns
    }
  }
}

resource "aws_ecr_repository_policy" "lambda_pull" {
  count = var.repository_name == null ? 0 : 1

  repository = var.repository_name
  policy     = data.aws_iam_policy_document.repository[0].json
}

# --- The functions ---

resource "aws_lambda_function" "gateway" {
  #checkov:skip=CKV_AWS_116:invoked synchronously by API Gateway only; a dead-letter queue takes asynchronous invocations
  #checkov:skip=CKV_AWS_272:code signing applies to .zip packages; this is a container image with an immutable tag from the service's own repository
  for_each = local.functions

  function_name = each.value.name
  description   = "Relay ${var.env} gateway (${each.value.api})"
  role          = aws_iam_role.function.arn
  package_type  = "Image"
  image_uri     = var.image_uri
  architectures = [var.architecture]
  memory_size   = var.memory_size
  timeout       = var.timeout_seconds
  kms_key_arn   = var.environment_kms_key_arn

  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  image_config {
    entry_point       = ["/app/.venv/bin/python", "-m", "awslambdaric"]
    command           = [each.value.handler]
    working_directory = "/app"
  }

  environment {
    variables = local.environment
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  tracing_config {
    mode = "Active"
  }

  lifecycle {
    precondition {
      condition     = length(setintersection(keys(var.environment), keys(var.secrets))) == 0
      error_message = "A variable in secrets is read from Secrets Manager at cold start; it must not be in environment too (no secret in plain variables)."
    }
  }

  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.function, # made with its retention and key before Lambda makes one
    aws_iam_role_policy.function,      # network interfaces are created with the role at once
    aws_ecr_repository_policy.lambda_pull,
  ]
}

# --- The HTTP API: every path to the function ---

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name}-http"
  description   = "Relay ${var.env} public API (HTTP API -> gateway Lambda)"
  protocol_type = "HTTP"
  # with a custom domain, the only way in is that name (CloudFront sends /v1/* there too)
  disable_execute_api_endpoint = local.custom_domain
  tags                         = var.tags
}

resource "aws_apigatewayv2_integration" "gateway" {
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.gateway["http"].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.timeout_seconds * 1000
}

resource "aws_apigatewayv2_route" "default" {
  #checkov:skip=CKV_AWS_309:the gateway authenticates every request itself (API keys, WebSocket tickets), as behind the ALB; public paths (health, the console's login) must stay open
  api_id    = aws_apigatewayv2_api.http.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.gateway.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  # No request headers (Authorization carries API keys) and no query strings (?ticket=).
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      ip                 = "$context.identity.sourceIp"
      httpMethod         = "$context.httpMethod"
      path               = "$context.path"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      latency            = "$context.responseLatency"
      integrationLatency = "$context.integrationLatency"
      integrationStatus  = "$context.integrationStatus"
      errorMessage       = "$context.error.message"
      integrationError   = "$context.integrationErrorMessage"
    })
  }

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.gateway["http"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}

# --- Alarms, to the platform's alarm topic ---

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.functions

  alarm_name          = "${each.value.name}-errors"
  alarm_description   = "More than ${var.function_errors_threshold} failed invocations of ${each.value.name} (crashes, timeouts, init failures) in 5 minutes."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.gateway[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.function_errors_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = local.functions

  alarm_name          = "${each.value.name}-throttles"
  alarm_description   = "Invocations of ${each.value.name} throttled in 5 minutes: raise reserved_concurrency or the account's concurrency limit."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.gateway[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-http-api-5xx"
  alarm_description   = "More than ${var.http_5xx_threshold} 5xx answers in 5 minutes at the public API (HTTP API)."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = aws_apigatewayv2_api.http.id }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.http_5xx_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "integration_latency" {
  alarm_name          = "${var.name}-http-api-integration-latency-p99"
  alarm_description   = "p99 of the gateway function's latency behind the HTTP API above ${var.integration_latency_p99_threshold_ms} ms for 15 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = "IntegrationLatency"
  dimensions          = { ApiId = aws_apigatewayv2_api.http.id }
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

# Before the WebSocket API the HTTP API's function was the only one: it moves to "http".
moved {
  from = aws_lambda_function.gateway
  to   = aws_lambda_function.gateway["http"]
}

moved {
  from = aws_cloudwatch_log_group.function
  to   = aws_cloudwatch_log_group.function["http"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_errors
  to   = aws_cloudwatch_metric_alarm.function_errors["http"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_throttles
  to   = aws_cloudwatch_metric_alarm.function_throttles["http"]
}
