variable "env" {
  description = "Deployment name."
  type        = string
}

variable "api_domain_name" {
  description = "The public API's domain name, which the load balancer's certificate covers (api_certificate_arn): CloudFront sends /v1/* there over HTTPS."
  type        = string
  nullable    = false
}

variable "storage_origins" {
  description = "Origins of artifact download links (the artifacts bucket's S3 endpoints): the console's Content-Security-Policy lets it read and show artifacts from there."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for origin in var.storage_origins : can(regex("^https?://[a-z0-9.-]+(:[0-9]+)?$", origin))])
    error_message = "storage_origins: origins only (scheme://host[:port]), nothing that could widen the CSP."
  }
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
