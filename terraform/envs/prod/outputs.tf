output "api_dns_name" {
  description = "Point the API's domain here (the load balancer, or the HTTP API's custom-domain target)."
  value       = module.relay.api_dns_name
}

output "api_url" {
  description = "The public API's URL."
  value       = module.relay.api_url
}

output "ws_url" {
  description = "Where clients open the live WebSocket."
  value       = module.relay.ws_url
}

output "ws_dns_name" {
  description = "edge = \"apigateway\" with ws_domain_name: point that name here."
  value       = module.relay.ws_dns_name
}

output "gateway_function" {
  description = "edge = \"apigateway\": the gateway's Lambda functions, API ids, log groups and the WebSocket connections table."
  value       = module.relay.gateway_function
}

output "repositories" {
  description = "Service -> ECR repository to push images to."
  value       = module.relay.repositories
}

output "task_definitions" {
  description = "Service -> deployed task definition revision."
  value       = module.relay.task_definitions
}

output "rules" {
  description = "Rule name -> event pattern."
  value       = module.relay.rules
}

output "secrets" {
  description = "Secrets to fill before the first deploy."
  value       = module.relay.secrets
}

output "frontend" {
  description = "Frontend bucket and distribution."
  value       = module.relay.frontend
}

output "console_bucket" {
  description = "The frontend bucket (relay console-deploy --bucket, RELAY_CONSOLE_BUCKET)."
  value       = try(module.relay.frontend.bucket, null)
}

output "console_distribution_id" {
  description = "The distribution to invalidate (RELAY_CONSOLE_DISTRIBUTION_ID)."
  value       = try(module.relay.frontend.distribution_id, null)
}

output "console_url" {
  description = "The web console (same origin as /v1 through CloudFront)."
  value       = try(module.relay.frontend.console_url, null)
}

output "database_address" {
  description = "PostgreSQL's address, for `relay db roles` (docs/deploy.md)."
  value       = module.relay.database_address
}

output "database_master_secret_arn" {
  description = "The RDS-managed master credentials, for `relay db roles` only."
  value       = module.relay.database_secret_arn
}

output "redis_url" {
  description = "Redis's URL without the AUTH token (docs/deploy.md, bootstrap)."
  value       = module.relay.redis_url
}
