output "bus_name" {
  description = "The event bus (RELAY_EVENT_BUS_NAME's default)."
  value       = module.event_bus.name
}

output "queue_urls" {
  description = "Queue id -> URL."
  value       = merge([for service in module.queues : service.queue_urls]...)
}

output "rules" {
  description = "Rule name -> event pattern, as applied (tests compare them with relay_ops.routing)."
  value       = merge([for service in module.queues : service.rules]...)
}

output "bucket" {
  description = "The artifacts bucket (RELAY_ARTIFACTS_BUCKET's default)."
  value       = module.artifacts.name
}

output "secrets" {
  description = "Secret name -> ARN (put a value with aws secretsmanager put-secret-value)."
  value       = module.secrets.arns
}

output "max_receive_counts" {
  description = "Queue name -> receives before a message moves to its DLQ (routing.yaml)."
  value       = { for id, queue in module.routing.queues : queue.name => queue.settings.max_receive_count }
}
