variable "env" {
  description = "Deployment name."
  type        = string
}

variable "aliases" {
  description = "Domain names the distribution answers for (need certificate_arn)."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate in us-east-1 for the aliases; null = the *.cloudfront.net certificate."
  type        = string
  default     = null
}

variable "web_acl_id" {
  description = "WAF web ACL (CLOUDFRONT scope, us-east-1) ARN; null = none."
  type        = string
  default     = null
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"
}

variable "access_log_bucket" {
  description = "Bucket for S3 access logs (observability module)."
  type        = string
}

variable "access_log_bucket_domain_name" {
  description = "That bucket's domain name, for CloudFront logs."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
