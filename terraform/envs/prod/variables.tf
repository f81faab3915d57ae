variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "availability_zones" {
  description = "Zones in the region to use (two at least)."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b"]
}

variable "services" {
  description = "Per service: image_tag and optional sizing (see modules/platform). Deploying one service = changing its image_tag."
  type = map(object({
    image_tag      = string
    cpu            = optional(number, 512)
    memory         = optional(number, 1024)
    min_count      = optional(number, 1)
    max_count      = optional(number, 4)
    scaling_target = optional(number, 60)
    environment    = optional(map(string), {})
  }))
}

variable "internal_auth_public_key" {
  description = "The gateway's Ed25519 public key (base64url); its private half is in the relay/<env>/internal-auth-private-key secret."
  type        = string
}

variable "llm_provider" {
  description = "RELAY_LLM_PROVIDER for the agent."
  type        = string
  default     = "anthropic"
}

variable "edge" {
  description = "The public entry: \"alb\" (the ECS gateway behind a load balancer with WAF; SSE and WebSocket) or \"apigateway\" (the gateway as Lambda functions behind an API Gateway HTTP API and WebSocket API; no SSE). See docs/deploy.md, \"Choosing the edge\"."
  type        = string
  default     = "alb"

  validation {
    condition     = contains(["alb", "apigateway"], var.edge)
    error_message = "edge: \"alb\" or \"apigateway\"."
  }
}

variable "api_certificate_arn" {
  description = "ACM certificate (this region) for the public API's domain. With edge = \"apigateway\" and api_zone_id it may be null: one is issued and validated in that zone."
  type        = string
}

variable "api_domain_name" {
  description = "The public API's domain name (covered by api_certificate_arn); CloudFront routes the web console's /v1/* there."
  type        = string
}

variable "ws_domain_name" {
  description = "With edge = \"apigateway\": the WebSocket API's domain name (in api_zone_id's zone, covered by api_certificate_arn or issued there); null = its execute-api URL (output ws_url)."
  type        = string
  default     = null
}

variable "api_zone_id" {
  description = "Route 53 hosted zone of api_domain_name (and ws_domain_name): with edge = \"apigateway\", alias records to the HTTP and WebSocket APIs are made there. null = point the names at the api_dns_name and ws_dns_name outputs yourself."
  type        = string
  default     = null
}

variable "alarm_emails" {
  description = "Who gets alarm e-mails."
  type        = list(string)
  default     = []
}

variable "webhooks_backlog_threshold" {
  description = "Webhook deliveries due and not yet sent above which, for 15 minutes, the backlog alarm fires."
  type        = number
  default     = 1000
}

variable "waf_rate_limit_per_5_minutes" {
  description = "edge = \"alb\": requests one source address may send in any five minutes before the WAF answers 429; well above legitimate use (the gateway's per-tenant limit is 50 requests/s, 15,000 in five minutes). See modules/platform."
  type        = number
  default     = 30000
}

variable "public_api_docs" {
  description = "edge = \"alb\": serve the gateway's /docs and /openapi.json to the internet (false: 404 at the load balancer)."
  type        = bool
  default     = false
}

variable "public_probes" {
  description = "edge = \"alb\": serve /healthz and /readyz to the internet (false: 404 at the load balancer; its health check still reaches the tasks)."
  type        = bool
  default     = false
}
