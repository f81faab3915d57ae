# What operators watch: a KMS key for logs and alarms, the alarm topic, an access-log bucket
# (load balancer, CloudFront, S3), CloudWatch alarms on DLQ depth, queue age and 5xx, and the
# ADOT collector each task definition runs beside its service (OTLP in, X-Ray out).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_elb_service_account" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
  region  = data.aws_region.current.name

  # Where the collector's default ECS config (output "collector") puts OTLP metrics: awsemf's
  # namespace and EMF log group in that file, and the scope (meter) name the services use, which
  # awsemf adds as the OTelLib dimension. See the webhooks_backlog alarm below.
  collector_metrics = {
    namespace = "ECS/AWSOTel/Application"
    log_group = "/aws/ecs/application/metrics"
    scope     = "relay"
  }
}

# --- KMS key for log groups and the alarm topic ---

resource "aws_kms_key" "ops" {
  description             = "${var.name} logs and alarms"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.ops_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "ops" {
  name          = "alias/${var.name}-ops"
  target_key_id = aws_kms_key.ops.key_id
}

data "aws_iam_policy_document" "ops_key" {
  #checkov:skip=CKV_AWS_109:a key policy's resource "*" is the key itself; this is AWS's default account statement
  #checkov:skip=CKV_AWS_111:a key policy's resource "*" is the key itself; this is AWS's default account statement
  #checkov:skip=CKV_AWS_356:a key policy's resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${local.region}:${local.account}:log-group:*"]
    }
  }
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

# --- Alarm topic: subscribe e-mail, chat or paging to it ---

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.ops.arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# A dead letter means an event was not handled (or not delivered) and needs an operator:
# `relay dlq show` / `relay dlq redrive` (docs/operations.md).
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = toset(var.dlq_names)

  alarm_name          = "${each.key}-not-empty"
  alarm_description   = "${each.key} holds messages: see docs/operations.md (relay dlq show, redrive)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.key }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Work waiting too long: a consumer is down, stuck or under-scaled.
resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each = var.queue_age_thresholds

  alarm_name          = "${each.key}-oldest-message-age"
  alarm_description   = "The oldest message in ${each.key} has waited over ${each.value}s."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = each.value
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# 5xx at the public entry: from the gateway (target) and from the load balancer itself
# (no healthy gateway, timeouts).
resource "aws_cloudwatch_metric_alarm" "http_5xx" {
  for_each = var.load_balancer_alarms ? {
    target = "HTTPCode_Target_5XX_Count"
    elb    = "HTTPCode_ELB_5XX_Count"
  } : {}

  alarm_name          = "${var.name}-${each.key}-5xx"
  alarm_description   = "More than ${var.http_5xx_threshold} ${each.value} in 5 minutes at the public API."
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value
  dimensions          = { LoadBalancer = var.load_balancer_arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.http_5xx_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Webhook deliveries due and not yet sent: endpoints answer slowly or not at all, or the notifier
# is short of replicas or attempts (docs/operations.md, "Webhook backlog alarm").
#
# Where the metric comes from (checked against aws-observability/aws-otel-collector's
# config/ecs/ecs-default-config.yaml, which the image ships as /etc/ecs/ecs-default-config.yaml):
# the notifier exports the gauge relay.webhooks.backlog over OTLP to the collector sidecar; its
# metrics pipeline (otlp -> batch/metrics, 60 s -> awsemf) writes EMF records to the log group
# /aws/ecs/application/metrics, and CloudWatch makes them metrics in the namespace
# ECS/AWSOTel/Application. awsemf takes the dimensions from the data point's attributes (only
# `env` here; resource attributes are not converted unless configured) and adds `OTelLib`, the
# instrumentation scope's name: the notifier's meter is "relay" (metrics.get_meter("relay")).
# So the series is {OTelLib = "relay", env = <env>} -- not {env} alone -- plus a rolled-up
# {OTelLib}; an alarm must name every dimension of the series it watches. Renaming the meter or
# adding an attribute changes the series: the alarm then sits in INSUFFICIENT_DATA (missing
# data is not treated as fine here, so a broken metric path shows instead of looking healthy).
# The task role must be allowed to write that log group (platform/services.tf, notifier).
resource "aws_cloudwatch_metric_alarm" "webhooks_backlog" {
  count = var.webhooks_backlog_env == null ? 0 : 1

  alarm_name          = "${var.name}-webhooks-backlog"
  alarm_description   = "Over ${var.webhooks_backlog_threshold} webhook deliveries due and not sent for 15 minutes: see docs/operations.md (Webhook backlog alarm)."
  namespace           = local.collector_metrics.namespace
  metric_name         = "relay.webhooks.backlog"
  dimensions          = { OTelLib = local.collector_metrics.scope, env = var.webhooks_backlog_env }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.webhooks_backlog_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# --- Access logs: load balancer, CloudFront, S3 server access logs ---

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log bucket; logging it to itself would loop
  #checkov:skip=CKV_AWS_144:access logs are not replicated across regions; they expire after access_log_days
  #checkov:skip=CKV_AWS_145:ALB access logs can only be delivered to SSE-S3 buckets, not SSE-KMS
  #checkov:skip=CKV2_AWS_62:nothing reacts to new log objects; they are read on demand
  bucket        = "${var.name}-access-logs-${local.account}"
  force_destroy = false
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

# CloudFront's standard logs are written with an ACL grant, so ACLs stay usable here.
resource "aws_s3_bucket_ownership_controls" "access_logs" {
  #checkov:skip=CKV2_AWS_65:CloudFront standard logging writes with ACL grants; every object still belongs to the account
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "LoadBalancerWrites"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/alb/AWSLogs/${local.account}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }
  statement {
    sid       = "S3ServerAccessLogsWrite"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/s3/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  policy     = data.aws_iam_policy_document.access_logs.json
  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
