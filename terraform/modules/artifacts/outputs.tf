output "name" {
  description = "Bucket name (RELAY_ARTIFACTS_BUCKET)."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "Bucket ARN (IAM policies: artifacts/* under it)."
  value       = aws_s3_bucket.this.arn
}

output "download_origins" {
  description = "Origins of the presigned download links (virtual-hosted S3, global and regional names): the console's CSP allows them."
  value = [
    "https://${aws_s3_bucket.this.id}.s3.amazonaws.com",
    "https://${aws_s3_bucket.this.id}.s3.${aws_s3_bucket.this.region}.amazonaws.com",
  ]
}
