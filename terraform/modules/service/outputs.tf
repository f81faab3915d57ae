output "repository_url" {
  description = "Push the service's images here (docker push <url>:<tag>)."
  value       = aws_ecr_repository.this.repository_url
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "The task definition revision the service runs (rollback target)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_role_arn" {
  description = "The role the service's code runs as."
  value       = aws_iam_role.task.arn
}

output "log_group" {
  description = "The service's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "queue_names" {
  description = "Queue id -> queue name (empty for the gateway)."
  value       = module.queues.queue_names
}

output "dlq_names" {
  description = "Every DLQ and delivery DLQ of the service."
  value       = concat(values(module.queues.dlq_names), values(module.queues.delivery_dlq_names))
}

output "rules" {
  description = "Rule name -> event pattern of the rules feeding the service."
  value       = module.queues.rules
}
