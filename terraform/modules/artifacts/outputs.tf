output "name" {
  description = "Bucket name (RELAY_ARTIFACTS_BUCKET)."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "Bucket ARN (IAM policies: staging/* and artifacts/* under it)."
  value       = aws_s3_bucket.this.arn
}
