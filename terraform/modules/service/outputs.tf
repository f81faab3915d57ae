output "repository_url" {
  description = "Push the service's images here (docker push <url>:<tag>)."
  value       = aws_ecr_repository.this.repository_url
}

output "service_name" {
  description = "ECS service name (null with run_on_ecs = false)."
  value       = one(aws_ecs_service.this[*].name)
}

output "task_definition_arn" {
  description = "The task definition revision the service runs (rollback target); null with run_on_ecs = false."
  value       = one(aws_ecs_task_definition.this[*].arn)
}

output "task_role_arn" {
  description = "The role the service's code runs as (null with run_on_ecs = false)."
  value       = one(aws_iam_role.task[*].arn)
}

output "log_group" {
  description = "The service's log group (null with run_on_ecs = false)."
  value       = one(aws_cloudwatch_log_group.this[*].name)
}

output "repository_arn" {
  description = "The image repository's ARN."
  value       = aws_ecr_repository.this.arn
}

output "repository_name" {
  description = "The image repository's name (relay-<env>-<service>)."
  value       = aws_ecr_repository.this.name
}

output "image" {
  description = "The image this service runs: <repository_url>:<image_tag>."
  value       = local.image
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
