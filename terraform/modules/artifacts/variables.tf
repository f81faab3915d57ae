variable "name" {
  description = "Bucket name, relay-<env>-artifacts (what RELAY_ARTIFACTS_BUCKET defaults to)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS; null = SSE-S3 (AES256). The agent and artifacts task roles get the key grants they need."
  type        = string
  default     = null
}

variable "staging_expiry_days" {
  description = "Days before an object under staging/ (where agents before ADR 0023 uploaded) is deleted."
  type        = number
  default     = 1
}

variable "versioning" {
  description = "Keep object versions (a deleted or overwritten artifact can be restored until noncurrent_version_days)."
  type        = bool
  default     = true
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted artifact version is kept."
  type        = number
  default     = 30
}

variable "access_log_bucket" {
  description = "Bucket receiving S3 server access logs; null = no access logs."
  type        = string
  default     = null
}

variable "tls_only" {
  description = "Attach a bucket policy denying requests without TLS (off for moto, which serves plain HTTP)."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket (local and throwaway envs only)."
  type        = bool
  default     = false
}

variable "cors_allowed_origins" {
  description = "Origins the web console is served from (https://<distribution>, aliases; the gateway's locally): they may GET artifacts through their download links. Empty: no CORS rule."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
