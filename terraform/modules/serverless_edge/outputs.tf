output "api_endpoint" {
  description = "The public API's URL: https://<domain_name> with a custom domain, else the execute-api endpoint."
  value       = local.custom_domain ? "https://${var.domain_name}" : aws_apigatewayv2_api.http.api_endpoint
}

output "api_id" {
  description = "The HTTP API's id (AWS/ApiGateway metrics' ApiId)."
  value       = aws_apigatewayv2_api.http.id
}

output "function_name" {
  description = "The gateway function."
  value       = aws_lambda_function.gateway.function_name
}

output "function_arn" {
  description = "The gateway function's ARN."
  value       = aws_lambda_function.gateway.arn
}

output "role_arn" {
  description = "The role the function runs as."
  value       = aws_iam_role.function.arn
}

output "dns_target" {
  description = "Where to point domain_name (CNAME or alias) when no route53_zone_id is given: the custom domain's regional target; null without a custom domain."
  value       = local.custom_domain ? aws_apigatewayv2_domain_name.api[0].domain_name_configuration[0].target_domain_name : null
}

output "log_group" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.function.name
}

output "access_log_group" {
  description = "The API's access log group."
  value       = aws_cloudwatch_log_group.access.name
}
