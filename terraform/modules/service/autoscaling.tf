# Scaling: CPU for the HTTP services; for queue workers (the agent) the backlog per running
# task, down to zero tasks when there is nothing to do.

locals {
  service_id = var.run_on_ecs ? "service/${var.cluster_name}/${aws_ecs_service.this[0].name}" : null
  main_queue = try(module.queues.queue_names[var.name], null)
  by_backlog = var.autoscaling.mode == "queue_backlog"
}

resource "aws_appautoscaling_target" "this" {
  count = local.ecs

  service_namespace  = "ecs"
  resource_id        = local.service_id
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  count = var.run_on_ecs && !local.by_backlog ? 1 : 0

  name               = "${local.full_name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# Messages waiting or in progress per running task, held near the target (the agent's
# RELAY_CONSUMER_CONCURRENCY is the natural target: one message per slot).
resource "aws_appautoscaling_policy" "backlog_per_task" {
  count = var.run_on_ecs && local.by_backlog ? 1 : 0

  name               = "${local.full_name}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target
    scale_in_cooldown  = 300 # a scaled-in task drains for its grace period; don't flap
    scale_out_cooldown = 60

    customized_metric_specification {
      metrics {
        id          = "backlog_per_task"
        label       = "messages per running task"
        expression  = "(visible + in_flight) / IF(tasks > 0, tasks, 1)"
        return_data = true
      }
      metrics {
        id          = "visible"
        return_data = false
        metric_stat {
          stat = "Maximum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = local.main_queue
            }
          }
        }
      }
      metrics {
        id          = "in_flight"
        return_data = false
        metric_stat {
          stat = "Maximum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesNotVisible"
            dimensions {
              name  = "QueueName"
              value = local.main_queue
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = var.cluster_name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.this[0].name
            }
          }
        }
      }
    }
  }
}

# Target tracking scales in proportion to the running tasks, so from zero it cannot start one:
# this step policy adds the first task when messages wait and none runs.
resource "aws_appautoscaling_policy" "wake_from_zero" {
  count = var.run_on_ecs && local.by_backlog && var.min_count == 0 ? 1 : 0

  name               = "${local.full_name}-wake-from-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 60
    metric_aggregation_type = "Maximum"
    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "wake_from_zero" {
  count = var.run_on_ecs && local.by_backlog && var.min_count == 0 ? 1 : 0

  alarm_name          = "${local.full_name}-work-waiting-no-tasks"
  alarm_description   = "Messages wait in ${local.main_queue} and no ${var.name} task runs: start one."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.wake_from_zero[0].arn]

  metric_query {
    id          = "waiting_without_tasks"
    expression  = "IF(visible > 0 AND FILL(tasks, 0) == 0, 1, 0)"
    label       = "work waiting, no task running"
    return_data = true
  }
  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = local.main_queue }
      stat        = "Maximum"
      period      = 60
    }
  }
  metric_query {
    id = "tasks"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions  = { ClusterName = var.cluster_name, ServiceName = aws_ecs_service.this[0].name }
      stat        = "Average"
      period      = 60
    }
  }

  tags = var.tags
}
