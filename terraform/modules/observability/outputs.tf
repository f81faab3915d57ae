output "log_kms_key_arn" {
  description = "KMS key for CloudWatch log groups."
  value       = aws_kms_key.ops.arn
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "access_log_bucket" {
  description = "Bucket for load balancer (prefix alb/), CloudFront (cloudfront/) and S3 (s3/) access logs."
  # .bucket (set in configuration), not .id: known when planning, so a module may count on it
  value = aws_s3_bucket.access_logs.bucket
}

output "access_log_bucket_domain_name" {
  description = "The access-log bucket's domain name (CloudFront logging)."
  value       = aws_s3_bucket.access_logs.bucket_domain_name
}

output "collector" {
  description = "The ADOT collector sidecar: image and command. Its default ECS config receives OTLP on localhost:4317/4318 and exports traces to X-Ray (services: RELAY_OTLP_ENDPOINT=http://localhost:4318)."
  value = {
    image         = var.collector_image
    command       = ["--config=/etc/ecs/ecs-default-config.yaml"]
    otlp_endpoint = "http://localhost:4318"
  }
}

output "collector_metrics_log_group_arn" {
  description = "The log group the collector's awsemf exporter writes OTLP metrics to (as EMF); a task whose metrics must reach CloudWatch needs logs:CreateLogGroup, CreateLogStream and PutLogEvents on it."
  value       = "arn:aws:logs:${local.region}:${local.account}:log-group:${local.collector_metrics.log_group}"
}
