output "bucket" {
  description = "The console's build goes under console/ here (relay console-deploy)."
  value       = aws_s3_bucket.site.id
}

output "distribution_id" {
  description = "relay console-deploy invalidates /console/index.html here."
  value       = aws_cloudfront_distribution.site.id
}

output "domain_name" {
  description = "The distribution's *.cloudfront.net name (point DNS aliases at it)."
  value       = aws_cloudfront_distribution.site.domain_name
}

output "console_url" {
  description = "The web console on the distribution's own name (aliases serve it too)."
  value       = "https://${aws_cloudfront_distribution.site.domain_name}/console/"
}

output "origins" {
  description = "Origins the console is served from (the distribution's name and its aliases): the artifacts bucket lets them read downloads (CORS)."
  value       = concat(["https://${aws_cloudfront_distribution.site.domain_name}"], [for alias in var.aliases : "https://${alias}"])
}
