output "bus_name" {
  description = "The EventBridge bus: relay-<env>."
  value       = "relay-${var.env}"
}

output "queues" {
  description = "Queue id (\"agent\", \"agent-control\") -> service, kind, consumed events, names and settings (queue_defaults merged with the service's overrides)."
  value = {
    for id, queue in local.queues : id => merge(queue, {
      name              = "relay-${var.env}-${id}"
      dlq_name          = "relay-${var.env}-${id}-dlq"
      delivery_dlq_name = "relay-${var.env}-${id}-delivery-dlq"
    })
  }
}

output "rules" {
  description = "Rule key -> EventBridge rule: name, consumer, target queue id, producer, events and the event pattern (JSON)."
  value = {
    for key, rule in local.rules : key => merge(rule, {
      pattern = jsonencode({ source = ["relay.${rule.producer}"], "detail-type" = rule.events })
    })
  }
}

output "services" {
  description = "Every service named in the declaration (gateway included, which consumes nothing)."
  value       = keys(local.routing.services)
}

output "producers" {
  description = "Services that publish events; each may put events with source relay.<service> only."
  value       = local.producers
}

output "target_retry_policy" {
  description = "EventBridge -> SQS delivery retries (maximum_retry_attempts, maximum_event_age_seconds)."
  value       = local.routing.target_retry_policy
}
