output "name" {
  description = "Bus name."
  value       = aws_cloudwatch_event_bus.this.name
}

output "arn" {
  description = "Bus ARN (events:PutEvents resources, rule ARNs)."
  value       = aws_cloudwatch_event_bus.this.arn
}

output "archive_arn" {
  description = "Archive ARN, or null without an archive."
  value       = try(aws_cloudwatch_event_archive.this[0].arn, null)
}
