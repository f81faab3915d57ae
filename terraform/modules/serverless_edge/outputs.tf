output "api_endpoint" {
  description = "The public API's URL: https://<domain_name> with a custom domain, else the execute-api endpoint."
  value       = local.custom_domain ? "https://${var.domain_name}" : aws_apigatewayv2_api.http.api_endpoint
}

output "api_id" {
  description = "The HTTP API's id (AWS/ApiGateway metrics' ApiId)."
  value       = aws_apigatewayv2_api.http.id
}

output "function_name" {
  description = "The gateway function behind the HTTP API."
  value       = aws_lambda_function.gateway["http"].function_name
}

output "function_arn" {
  description = "The ARN of the gateway function behind the HTTP API."
  value       = aws_lambda_function.gateway["http"].arn
}

output "role_arn" {
  description = "The role the function runs as."
  value       = aws_iam_role.function.arn
}

output "dns_target" {
  description = "Where to point domain_name (CNAME or alias) when no route53_zone_id is given: the custom domain's regional target; null without a custom domain."
  value       = local.custom_domain ? aws_apigatewayv2_domain_name.this["api"].domain_name_configuration[0].target_domain_name : null
}

output "log_group" {
  description = "The log group of the function behind the HTTP API."
  value       = aws_cloudwatch_log_group.function["http"].name
}

output "access_log_group" {
  description = "The API's access log group."
  value       = aws_cloudwatch_log_group.access.name
}

output "ws_url" {
  description = "Where clients open the WebSocket: wss://<ws_domain_name> with a custom name, else the WebSocket API's stage URL."
  value       = var.ws_domain_name != null ? "wss://${var.ws_domain_name}" : "${aws_apigatewayv2_api.ws.api_endpoint}/${aws_apigatewayv2_stage.ws.name}"
}

output "ws_api_id" {
  description = "The WebSocket API's id (AWS/ApiGateway metrics' ApiId)."
  value       = aws_apigatewayv2_api.ws.id
}

output "ws_dns_target" {
  description = "Where to point ws_domain_name when no route53_zone_id is given; null without one."
  value       = var.ws_domain_name != null ? aws_apigatewayv2_domain_name.this["ws"].domain_name_configuration[0].target_domain_name : null
}

output "ws_function_name" {
  description = "The gateway function behind the WebSocket API (authorizer and routes)."
  value       = aws_lambda_function.gateway["ws"].function_name
}

output "ws_access_log_group" {
  description = "The WebSocket API's access log group."
  value       = aws_cloudwatch_log_group.ws_access.name
}

output "ws_management_endpoint" {
  description = "The WebSocket API's connection management endpoint (PostToConnection): the notifier's RELAY_EDGE_WS_ENDPOINT."
  value       = local.ws_management_endpoint
}

output "ws_connections_arn" {
  description = "The ARN pattern of PostToConnection on this stage's connections (execute-api:ManageConnections), for the notifier's role."
  value       = "${aws_apigatewayv2_stage.ws.execution_arn}/POST/@connections/*"
}

output "connections_table_name" {
  description = "The DynamoDB table of WebSocket connections and subscriptions: the notifier's RELAY_EDGE_CONNECTIONS_TABLE."
  value       = aws_dynamodb_table.connections.name
}

output "connections_table_arn" {
  description = "The connections table's ARN (its indexes are <arn>/index/*)."
  value       = aws_dynamodb_table.connections.arn
}

output "connections_key_arn" {
  description = "The KMS key encrypting the connections table."
  value       = aws_kms_key.connections.arn
}
