variable "name" {
  description = "Name prefix, relay-<env> (load balancer names: 32 characters at most)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (two zones at least)."
  type        = list(string)
}

variable "gateway_security_group_id" {
  description = "The gateway tasks' security group (the only place the load balancer sends to)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the API's domain name."
  type        = string
}

variable "allowed_cidrs" {
  description = "Who may reach the API (0.0.0.0/0 for the public internet)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "idle_timeout_seconds" {
  description = "Idle seconds before the load balancer closes a connection; above the SSE heartbeat (RELAY_SSE_HEARTBEAT_SECONDS) and the WebSocket pings (RELAY_WS_PING_INTERVAL_SECONDS, 15 s, at most 60) so open streams and WebSockets are never idle that long."
  type        = number
  default     = 300

  validation {
    condition     = var.idle_timeout_seconds > 60 && var.idle_timeout_seconds <= 4000
    error_message = "idle_timeout_seconds must be above 60 (the longest WebSocket ping interval) and at most 4000 (the ALB's maximum)."
  }
}

variable "deregistration_delay_seconds" {
  description = "How long the load balancer keeps a stopping gateway's open connections before it closes them (ECS sends SIGTERM after that): room for in-flight requests (RELAY_UPSTREAM_TIMEOUT, 15 s). WebSockets and SSE streams never end by themselves, so they are cut then and clients resume (`after`, Last-Event-ID); a longer delay only slows deployments."
  type        = number
  default     = 30

  validation {
    condition     = var.deregistration_delay_seconds >= 0 && var.deregistration_delay_seconds <= 3600
    error_message = "deregistration_delay_seconds must be between 0 and 3600 (the target group's range)."
  }
}

variable "rate_limit_per_5_minutes" {
  description = "WAF: requests one source address may send in any five minutes before it gets 429s (until its rate falls below). The outer fence against floods, not the tenants' limit (the gateway's, 50 requests/s by default, 15,000 in five minutes): keep it well above what one address legitimately sends, NATs and CloudFront's addresses (the console's /v1 calls) included."
  type        = number
  default     = 30000

  validation {
    condition     = var.rate_limit_per_5_minutes >= 100 && var.rate_limit_per_5_minutes <= 2000000000
    error_message = "rate_limit_per_5_minutes must be between 100 and 2,000,000,000 (WAF's range)."
  }
}

variable "rate_limit_retry_after_seconds" {
  description = "Retry-After of the WAF's 429: a refused address stays refused until its five-minute count falls below the limit."
  type        = number
  default     = 60
}

variable "public_api_docs" {
  description = "Let the load balancer pass the gateway's API docs (/docs, /openapi.json) to the internet. false: they answer 404 there (the published document is contracts/openapi.json)."
  type        = bool
  default     = false
}

variable "public_probes" {
  description = "Let the load balancer pass /healthz and /readyz (which name the dependencies and their state) to the internet. false: they answer 404 there; the target group's health check still asks /readyz of each task directly."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancer."
  type        = bool
  default     = true
}

variable "access_log_bucket" {
  description = "Bucket for the load balancer's access logs (prefix alb/)."
  type        = string
}

variable "log_retention_days" {
  description = "Days WAF logs are kept."
  type        = number
  default     = 365
}

variable "log_kms_key_arn" {
  description = "KMS key for the WAF log group."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
