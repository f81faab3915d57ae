output "bucket" {
  description = "Upload the built site here (aws s3 sync dist/ s3://<bucket>/)."
  value       = aws_s3_bucket.site.id
}

output "distribution_id" {
  description = "Invalidate after a deploy (aws cloudfront create-invalidation --paths '/*')."
  value       = aws_cloudfront_distribution.site.id
}

output "domain_name" {
  description = "The distribution's *.cloudfront.net name (point DNS aliases at it)."
  value       = aws_cloudfront_distribution.site.domain_name
}
