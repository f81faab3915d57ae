# One Relay service on ECS Fargate: its image repository, task definition (the service and the
# ADOT collector beside it), the ECS service, its queues and rules (service_queues, from
# routing.yaml), least-privilege roles, log group and autoscaling. With run_on_ecs = false only
# the image repository and the queues are made: the service runs elsewhere from the same image
# (the gateway as a Lambda function behind API Gateway, edge = "apigateway").

data "aws_region" "current" {}

locals {
  full_name = "relay-${var.env}-${var.name}"
  port      = 8000
  region    = data.aws_region.current.name
  image     = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
  has_queue = length([for queue in var.routing.queues : queue if queue.service == var.name]) > 0
  publishes = contains(var.routing.producers, var.name)
  ecs       = var.run_on_ecs ? 1 : 0
}

# --- Image repository: immutable tags (a tag names exact bytes; rollback = deploy the old tag) ---

resource "aws_ecr_repository" "this" {
  name                 = local.full_name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.images_kept} images (rollback targets)"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.images_kept }
      action       = { type = "expire" }
    }]
  })
}

# --- Queues, DLQs and the rules feeding them ---

module "queues" {
  source = "../service_queues"

  service      = var.name
  queues       = var.routing.queues
  rules        = var.routing.rules
  bus_name     = var.bus_name
  retry_policy = var.routing.target_retry_policy
  kms_key_arn  = try(var.queue_kms_key.arn, null)
  tags         = var.tags
}

# --- Logs ---

resource "aws_cloudwatch_log_group" "this" {
  count = local.ecs

  name              = "/relay/${var.env}/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# --- Roles: the execution role starts the task (pull, logs, injected secrets); the task role
#     is what the service's own code may do. ---

data "aws_iam_policy_document" "assume_ecs_tasks" {
  count = local.ecs

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  count = local.ecs

  name               = "${local.full_name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  count = local.ecs

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # account-wide by design: the action has no resource
  }
  statement {
    sid       = "PullOwnImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.this.arn]
  }
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[0].arn}:*"]
  }
  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadInjectedSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }
  dynamic "statement" {
    for_each = length(var.secret_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptInjectedSecrets"
      actions   = ["kms:Decrypt"]
      resources = var.secret_kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  count = local.ecs

  name   = "start-task"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.execution[0].json
}

resource "aws_iam_role" "task" {
  count = local.ecs

  name               = "${local.full_name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  count = local.ecs

  # Publish only as itself: every event it puts carries source relay.<service>.
  dynamic "statement" {
    for_each = local.publishes ? [1] : []
    content {
      sid       = "PublishOwnEvents"
      actions   = ["events:PutEvents"]
      resources = [var.bus_arn]
      condition {
        test     = "StringEquals"
        variable = "events:source"
        values   = ["relay.${var.name}"]
      }
    }
  }

  # Consume its own queues; SendMessage re-sends a deferred message to its own queue (ADR 0008).
  dynamic "statement" {
    for_each = local.has_queue ? [1] : []
    content {
      sid = "ConsumeOwnQueues"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
      ]
      resources = values(module.queues.queue_arns)
    }
  }

  # Receiving from an SSE-KMS queue decrypts, sending (the deferrals above) makes a data key:
  # with the queues' key, through SQS only. Operators' `relay dlq` (DLQs, redrive) runs with
  # their own credentials, not this role.
  dynamic "statement" {
    for_each = local.has_queue && var.queue_kms_key != null ? [1] : []
    content {
      sid       = "OwnQueuesKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.queue_kms_key.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.task_policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
      dynamic "condition" {
        for_each = try(statement.value.conditions, [])
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }

  # The ADOT collector sends the task's traces to X-Ray; these actions take no resource.
  dynamic "statement" {
    for_each = var.collector == null ? [] : [1]
    content {
      sid = "WriteTraces"
      actions = [
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  #checkov:skip=CKV_AWS_290:only the X-Ray trace actions are on *, as X-Ray has no resource-level permissions
  #checkov:skip=CKV_AWS_355:only the X-Ray trace actions are on *, as X-Ray has no resource-level permissions
  count = local.ecs

  name   = "service"
  role   = aws_iam_role.task[0].id
  policy = data.aws_iam_policy_document.task[0].json
}

# --- Task definition and service ---

locals {
  environment = merge(var.environment, {
    RELAY_ENV                    = var.env
    RELAY_HTTP_HOST              = "0.0.0.0"
    RELAY_HTTP_PORT              = tostring(local.port)
    RELAY_SHUTDOWN_GRACE_SECONDS = tostring(var.shutdown_grace_seconds)
    AWS_REGION                   = local.region
    RELAY_LOG_FORMAT             = "json"
    TMPDIR                       = "/tmp"
  }, var.collector == null ? {} : { RELAY_OTLP_ENDPOINT = var.collector.otlp_endpoint })

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = one(aws_cloudwatch_log_group.this[*].name)
      awslogs-region        = local.region
      awslogs-stream-prefix = var.name
    }
  }

  app_container = {
    name                   = var.name
    image                  = local.image
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = local.port, protocol = "tcp", name = "http" }]
    environment            = [for key in sort(keys(local.environment)) : { name = key, value = local.environment[key] }]
    secrets                = [for key in sort(keys(var.secrets)) : { name = key, valueFrom = var.secrets[key] }]
    # Fargate caps stopTimeout at 120 s: the service drains within its grace, then exits.
    stopTimeout      = min(120, var.shutdown_grace_seconds + 10)
    mountPoints      = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    logConfiguration = local.log_configuration
    healthCheck = {
      command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.port}/healthz', timeout=3)"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    dependsOn = var.collector == null ? [] : [{ containerName = "otel-collector", condition = "START" }]
  }

  collector_container = var.collector == null ? [] : [{
    name                   = "otel-collector"
    image                  = var.collector.image
    command                = var.collector.command
    essential              = false # the service keeps serving if tracing breaks
    readonlyRootFilesystem = true
    logConfiguration       = merge(local.log_configuration, { options = merge(local.log_configuration.options, { awslogs-stream-prefix = "otel" }) })
  }]
}

resource "aws_ecs_task_definition" "this" {
  count = local.ecs

  family                   = local.full_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution[0].arn
  task_role_arn            = aws_iam_role.task[0].arn
  container_definitions    = jsonencode(concat([local.app_container], local.collector_container))

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Scratch space (the agent's workspaces, temp files) on the task's ephemeral storage; the
  # root filesystem stays read-only.
  volume {
    name = "tmp"
  }

  tags = var.tags
}

resource "aws_service_discovery_service" "this" {
  # a known bool, not namespace_id != null: the namespace's id is unknown until it is made
  count = var.run_on_ecs && var.discoverable ? 1 : 0

  name = var.name
  dns_config {
    namespace_id   = var.namespace_id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }
  health_check_custom_config {
    failure_threshold = 1
  }
  tags = var.tags
}

resource "aws_ecs_service" "this" {
  count = local.ecs

  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.this[0].arn
  desired_count                      = var.min_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.target_group_arn == null ? null : 60

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  # A deployment whose tasks never become healthy rolls back to the last good task definition.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  dynamic "load_balancer" {
    for_each = var.target_group_arn == null ? [] : [var.target_group_arn]
    content {
      target_group_arn = load_balancer.value
      container_name   = var.name
      container_port   = local.port
    }
  }

  dynamic "service_registries" {
    for_each = aws_service_discovery_service.this
    content {
      registry_arn = service_registries.value.arn
    }
  }

  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it after the first apply
  }

  tags = var.tags
}

# Before run_on_ecs, these had no count: their state moves to instance [0], nothing is replaced.
moved {
  from = aws_cloudwatch_log_group.this
  to   = aws_cloudwatch_log_group.this[0]
}

moved {
  from = aws_iam_role.execution
  to   = aws_iam_role.execution[0]
}

moved {
  from = aws_iam_role_policy.execution
  to   = aws_iam_role_policy.execution[0]
}

moved {
  from = aws_iam_role.task
  to   = aws_iam_role.task[0]
}

moved {
  from = aws_iam_role_policy.task
  to   = aws_iam_role_policy.task[0]
}

moved {
  from = aws_ecs_task_definition.this
  to   = aws_ecs_task_definition.this[0]
}

moved {
  from = aws_ecs_service.this
  to   = aws_ecs_service.this[0]
}

moved {
  from = aws_appautoscaling_target.this
  to   = aws_appautoscaling_target.this[0]
}
