# One service's queues (main, and control where declared), each with its two DLQs, and the
# EventBridge rules that feed them: all generated from the routing module's output, the way
# relay_ops.stack.topology.bootstrap builds them locally.

locals {
  queues = { for id, queue in var.queues : id => queue if queue.service == var.service }
  rules  = { for key, rule in var.rules : key => rule if rule.consumer == var.service }
}

# Messages the service failed to handle max_receive_count times.
resource "aws_sqs_queue" "dlq" {
  for_each = local.queues

  name                      = each.value.dlq_name
  message_retention_seconds = each.value.settings.dlq_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

# Events EventBridge could not deliver to the queue (after the target's retry policy).
resource "aws_sqs_queue" "delivery_dlq" {
  for_each = local.queues

  name                      = each.value.delivery_dlq_name
  message_retention_seconds = each.value.settings.dlq_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

resource "aws_sqs_queue" "queue" {
  for_each = local.queues

  name                       = each.value.name
  visibility_timeout_seconds = each.value.settings.visibility_timeout_seconds
  message_retention_seconds  = each.value.settings.message_retention_seconds
  sqs_managed_sse_enabled    = var.kms_key_arn == null ? true : null
  kms_master_key_id          = var.kms_key_arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = each.value.settings.max_receive_count
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "rule" {
  for_each = local.rules

  name           = each.value.name
  event_bus_name = var.bus_name
  event_pattern  = each.value.pattern
  state          = "ENABLED"
  description    = "${join(", ", each.value.events)} from ${each.value.producer} to ${each.value.consumer}"
  tags           = var.tags
}

resource "aws_cloudwatch_event_target" "queue" {
  for_each = local.rules

  rule           = aws_cloudwatch_event_rule.rule[each.key].name
  event_bus_name = var.bus_name
  target_id      = each.value.queue_id
  arn            = aws_sqs_queue.queue[each.value.queue_id].arn

  dead_letter_config {
    arn = aws_sqs_queue.delivery_dlq[each.value.queue_id].arn
  }

  retry_policy {
    maximum_retry_attempts       = var.retry_policy.maximum_retry_attempts
    maximum_event_age_in_seconds = var.retry_policy.maximum_event_age_seconds
  }
}

# Only this service's own rules may send to its queue and its delivery DLQ (aws:SourceArn);
# the same policy relay_ops.stack.topology gives them locally.
locals {
  rule_arns = {
    for id, queue in local.queues : id => [
      for key, rule in local.rules : aws_cloudwatch_event_rule.rule[key].arn if rule.queue_id == id
    ]
  }
}

resource "aws_sqs_queue_policy" "queue" {
  for_each = local.queues

  queue_url = aws_sqs_queue.queue[each.key].id
  policy    = jsonencode(local.from_rules_policy[each.key].queue)
}

resource "aws_sqs_queue_policy" "delivery_dlq" {
  for_each = local.queues

  queue_url = aws_sqs_queue.delivery_dlq[each.key].id
  policy    = jsonencode(local.from_rules_policy[each.key].delivery_dlq)
}

locals {
  from_rules_policy = {
    for id, queue in local.queues : id => {
      for target, arn in { queue = aws_sqs_queue.queue[id].arn, delivery_dlq = aws_sqs_queue.delivery_dlq[id].arn } :
      target => {
        Version = "2012-10-17"
        Statement = [{
          Sid       = "EventBridgeRules"
          Effect    = "Allow"
          Principal = { Service = "events.amazonaws.com" }
          Action    = "sqs:SendMessage"
          Resource  = arn
          Condition = { ArnEquals = { "aws:SourceArn" = local.rule_arns[id] } }
        }]
      }
    }
  }
}
