output "queue_arns" {
  description = "Queue id -> queue ARN."
  value       = { for id, queue in aws_sqs_queue.queue : id => queue.arn }
}

output "queue_urls" {
  description = "Queue id -> queue URL."
  value       = { for id, queue in aws_sqs_queue.queue : id => queue.id }
}

output "queue_names" {
  description = "Queue id -> queue name."
  value       = { for id, queue in aws_sqs_queue.queue : id => queue.name }
}

output "dlq_names" {
  description = "Queue id -> name of its DLQ (failed handling)."
  value       = { for id, queue in aws_sqs_queue.dlq : id => queue.name }
}

output "delivery_dlq_names" {
  description = "Queue id -> name of its delivery DLQ (EventBridge could not deliver)."
  value       = { for id, queue in aws_sqs_queue.delivery_dlq : id => queue.name }
}

output "all_queue_arns" {
  description = "Every queue of the service, DLQs included (IAM: the consumer's own queues)."
  value = concat(
    values(aws_sqs_queue.queue)[*].arn,
    values(aws_sqs_queue.dlq)[*].arn,
    values(aws_sqs_queue.delivery_dlq)[*].arn,
  )
}

output "rules" {
  description = "Rule name -> event pattern as applied (compare with relay_ops.routing)."
  value       = { for key, rule in aws_cloudwatch_event_rule.rule : rule.name => rule.event_pattern }
}
