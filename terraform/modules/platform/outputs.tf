output "api_dns_name" {
  description = "The public API's load balancer (point the API's domain at it)."
  value       = module.edge.dns_name
}

output "repositories" {
  description = "Service -> ECR repository URL to push its images to."
  value       = { for name, service in module.service : name => service.repository_url }
}

output "task_definitions" {
  description = "Service -> task definition revision now deployed."
  value       = { for name, service in module.service : name => service.task_definition_arn }
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
  description = "RDS-managed master credentials."
  value       = module.data.postgres_secret_arn
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
