output "api_dns_name" {
  description = "Where to point the API's domain name: the load balancer, or with edge = \"apigateway\" the HTTP API's custom-domain target (made as Route 53 aliases when api_zone_id is given; null without api_domain_name)."
  value       = var.edge == "alb" ? one(module.edge[*].dns_name) : one(module.serverless_edge[*].dns_target)
}

output "api_url" {
  description = "The public API's URL: https://<api_domain_name>, or without one the load balancer's DNS name (edge = \"alb\") or the HTTP API's execute-api endpoint (edge = \"apigateway\")."
  value = (var.edge == "alb"
    ? "https://${coalesce(var.api_domain_name, one(module.edge[*].dns_name))}"
    : one(module.serverless_edge[*].api_endpoint)
  )

  # An HTTP API has no security group, resource policy or WAF: a CIDR restriction would be dropped.
  precondition {
    condition     = var.edge == "alb" || toset(var.api_allowed_cidrs) == toset(["0.0.0.0/0"])
    error_message = "api_allowed_cidrs restricts the load balancer only: with edge = \"apigateway\" the HTTP API is public, so leave it at [\"0.0.0.0/0\"] or use edge = \"alb\"."
  }
}

output "ws_url" {
  description = "Where clients open the live WebSocket: wss://<api>/v1/ws behind the load balancer, or the WebSocket API's URL (wss://<ws_domain_name>, else its execute-api stage URL) with edge = \"apigateway\"."
  value = (var.edge == "alb"
    ? "wss://${coalesce(var.api_domain_name, one(module.edge[*].dns_name))}/v1/ws"
    : one(module.serverless_edge[*].ws_url)
  )
}

output "ws_dns_name" {
  description = "With edge = \"apigateway\" and ws_domain_name: where to point that name (made as Route 53 aliases when api_zone_id is given); null otherwise."
  value       = one(module.serverless_edge[*].ws_dns_target)
}

output "gateway_function" {
  description = "With edge = \"apigateway\": the gateway's Lambda functions, the APIs' ids, access log groups and the WebSocket connections table (null with edge = \"alb\")."
  value = var.edge == "apigateway" ? {
    function_name       = module.serverless_edge[0].function_name
    api_id              = module.serverless_edge[0].api_id
    log_group           = module.serverless_edge[0].log_group
    access_log_group    = module.serverless_edge[0].access_log_group
    ws_function_name    = module.serverless_edge[0].ws_function_name
    ws_api_id           = module.serverless_edge[0].ws_api_id
    ws_access_log_group = module.serverless_edge[0].ws_access_log_group
    connections_table   = module.serverless_edge[0].connections_table_name
  } : null
}

output "repositories" {
  description = "Service -> ECR repository URL to push its images to."
  value       = { for name, service in module.service : name => service.repository_url }
}

output "task_definitions" {
  description = "Service -> task definition revision now deployed (every service on ECS: without the gateway when edge = \"apigateway\")."
  value       = { for name, service in module.service : name => service.task_definition_arn if name != "gateway" || var.edge == "alb" }
}

output "cluster" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "bus_name" {
  description = "The event bus."
  value       = module.event_bus.name
}

output "rules" {
  description = "Rule name -> event pattern, every rule on the bus."
  value       = merge([for service in module.service : service.rules]...)
}

output "artifacts_bucket" {
  description = "The artifacts bucket."
  value       = module.artifacts.name
}

output "secrets" {
  description = "Secret name -> ARN; put their values before the first deploy."
  value       = module.secrets.arns
}

output "database_secret_arn" {
  description = "RDS-managed master credentials: for `relay db roles` (the services have their own)."
  value       = module.data.postgres_secret_arn
}

output "redis_url" {
  description = "Redis's URL without the AUTH token: with it, the value of relay/<env>/redis-url (docs/deploy.md)."
  value       = module.data.redis_url
}

output "database_address" {
  description = "The PostgreSQL instance's address (port 5432, database relay)."
  value       = module.data.postgres_address
}

output "alarm_topic_arn" {
  description = "Alarm notifications."
  value       = module.observability.alarm_topic_arn
}

output "frontend" {
  description = "Frontend bucket, distribution id, domain and the console's URL (null when disabled)."
  value = var.frontend_enabled ? {
    bucket          = module.frontend[0].bucket
    distribution_id = module.frontend[0].distribution_id
    domain_name     = module.frontend[0].domain_name
    console_url     = module.frontend[0].console_url
  } : null
}
