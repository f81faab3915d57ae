variable "env" {
  description = "Deployment name: dev, prod, ... (bus relay-<env>, queues relay-<env>-<service>)."
  type        = string
}

variable "routing_file" {
  description = "Path to contracts/routing.yaml."
  type        = string
}

variable "services" {
  description = "Per service: image_tag (required), and optionally cpu, memory, min_count, max_count, scaling_target (CPU % for HTTP services; messages per task for the agent) and extra RELAY_* environment."
  type = map(object({
    image_tag      = string
    cpu            = optional(number, 512)
    memory         = optional(number, 1024)
    min_count      = optional(number, 1)
    max_count      = optional(number, 4)
    scaling_target = optional(number, 60)
    environment    = optional(map(string), {})
  }))

  validation {
    condition     = toset(keys(var.services)) == toset(["gateway", "tasks", "agent", "notifier", "artifacts"])
    error_message = "services: exactly gateway, tasks, agent, notifier and artifacts."
  }

  # Webhooks to private addresses are for the local stack only: on AWS they would reach the VPC's
  # databases and the metadata endpoints (DESIGN.md, Webhooks).
  validation {
    condition     = alltrue([for service in values(var.services) : !contains(keys(service.environment), "RELAY_WEBHOOKS_ALLOW_PRIVATE")])
    error_message = "services: RELAY_WEBHOOKS_ALLOW_PRIVATE is for the local stack only, never in Terraform."
  }
}

variable "internal_auth_public_key" {
  description = "The gateway's Ed25519 public key (base64url), given to every service. Its private half goes into the relay/<env>/internal-auth-private-key secret."
  type        = string
}

variable "llm_provider" {
  description = "The agent's model provider (RELAY_LLM_PROVIDER): scripted, anthropic, bedrock or vertex."
  type        = string
  default     = "anthropic"

  validation {
    condition     = contains(["scripted", "anthropic", "bedrock", "vertex"], var.llm_provider)
    error_message = "llm_provider: scripted, anthropic, bedrock or vertex."
  }
}

variable "bedrock_model_arns" {
  description = "Bedrock model ARNs the agent may invoke (llm_provider = bedrock)."
  type        = list(string)
  default     = []
}

variable "availability_zones" {
  description = "Zones for subnets (two at least)."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "The VPC's CIDR block."
  type        = string
  default     = "10.40.0.0/16"
}

variable "nat_gateways" {
  description = "one, per_zone or none (see the network module)."
  type        = string
  default     = "one"
}

variable "interface_endpoints" {
  description = "Interface VPC endpoints (add bedrock-runtime for the bedrock provider)."
  type        = list(string)
  default     = ["events", "sqs", "secretsmanager", "logs", "ecr.api", "ecr.dkr", "xray", "kms"]
}

variable "edge" {
  description = "The public entry to the gateway: \"alb\" (the ECS gateway behind an Application Load Balancer with WAF; SSE and WebSocket) or \"apigateway\" (the gateway as Lambda functions behind an API Gateway HTTP API and WebSocket API, connections in DynamoDB; no SSE: ADR 0016, docs/deploy.md \"Choosing the edge\")."
  type        = string
  default     = "alb"

  validation {
    condition     = contains(["alb", "apigateway"], var.edge)
    error_message = "edge: \"alb\" or \"apigateway\"."
  }
}

variable "api_certificate_arn" {
  description = "ACM certificate (in this region) for the public API's domain: the load balancer's HTTPS listener, or with edge = \"apigateway\" the HTTP API's custom domain. With edge = \"apigateway\" it may be null when api_zone_id is given: a certificate is then issued and validated in that zone."
  type        = string
}

variable "api_domain_name" {
  description = "The public API's domain name (covered by api_certificate_arn, pointed at api_dns_name). Required with frontend_enabled: CloudFront sends the console's /v1/* there, by this name, so the console and the API share one origin. With edge = \"apigateway\" it is the HTTP API's custom domain (null = its execute-api endpoint only)."
  type        = string
  default     = null
}

variable "ws_domain_name" {
  description = "With edge = \"apigateway\": the WebSocket API's domain name (ws.example.com), in api_zone_id's zone, covered by api_certificate_arn (or issued there with it); null = the WebSocket API's execute-api URL (output ws_url). Not used with edge = \"alb\" (the WebSocket is wss://<api_domain_name>/v1/ws)."
  type        = string
  default     = null
}

variable "api_zone_id" {
  description = "Route 53 hosted zone of api_domain_name. With edge = \"apigateway\", alias A and AAAA records to the HTTP API's custom domain are made there; null = point the name at api_dns_name yourself. Not used with edge = \"alb\"."
  type        = string
  default     = null
}

variable "serverless_edge" {
  description = "With edge = \"apigateway\": the gateway function's architecture (x86_64 or arm64, as the image), memory (MB), timeout (at most 29 s), reserved concurrency (null = unreserved) and the stage's throttling (burst, requests per second)."
  type = object({
    architecture           = optional(string, "x86_64")
    memory_size            = optional(number, 1024)
    timeout_seconds        = optional(number, 29)
    reserved_concurrency   = optional(number)
    throttling_burst_limit = optional(number, 500)
    throttling_rate_limit  = optional(number, 1000)
  })
  default  = {}
  nullable = false
}

variable "api_allowed_cidrs" {
  description = "Who may reach the public API (the load balancer's security group; edge = \"alb\" only: an HTTP API takes no resource policy, so with edge = \"apigateway\" it must stay [\"0.0.0.0/0\"])."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "waf_rate_limit_per_5_minutes" {
  description = "edge = \"alb\": requests one source address may send in any five minutes before the WAF answers 429 (the outer fence; tenants' own limits are the gateway's, 50 requests/s by default, so 15,000 in five minutes). Keep it well above what one address legitimately sends: NATs, and the console's /v1 calls arrive from CloudFront's addresses. edge = \"apigateway\" has no WAF (its stage throttling is in serverless_edge)."
  type        = number
  default     = 30000
}

variable "public_api_docs" {
  description = "Serve the gateway's API docs (/docs, /openapi.json) to the internet. false: the gateway does not serve them (RELAY_PUBLIC_API_DOCS=false, either edge) and the load balancer answers them 404 (the published document is contracts/openapi.json)."
  type        = bool
  default     = false
}

variable "public_probes" {
  description = "edge = \"alb\": serve /healthz and /readyz to the internet. false: the load balancer answers them 404; its health check still asks each gateway task's /readyz directly. (Behind API Gateway the gateway function never serves them.)"
  type        = bool
  default     = false
}

variable "frontend_enabled" {
  description = "Create the frontend bucket and CloudFront distribution (the web console, with /v1 routed to the API; needs api_domain_name)."
  type        = bool
  default     = true
}

variable "frontend_aliases" {
  description = "Domain names of the frontend (need frontend_certificate_arn)."
  type        = list(string)
  default     = []
}

variable "frontend_certificate_arn" {
  description = "ACM certificate in us-east-1 for the frontend aliases."
  type        = string
  default     = null
}

variable "frontend_web_acl_id" {
  description = "CLOUDFRONT-scope WAF ACL for the frontend; null = none."
  type        = string
  default     = null
}

variable "postgres_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "multi_az" {
  description = "RDS standby in a second zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "RDS automated backup retention."
  type        = number
  default     = 14
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_nodes" {
  description = "Redis nodes (2+ for failover)."
  type        = number
  default     = 2
}

variable "deletion_protection" {
  description = "Protect the database and load balancer from deletion."
  type        = bool
  default     = true
}

variable "event_archive_days" {
  description = "Days the bus archive keeps events; null = no archive."
  type        = number
  default     = 30
}

variable "shutdown_grace_seconds" {
  description = "RELAY_SHUTDOWN_GRACE_SECONDS for every service."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days service logs are kept."
  type        = number
  default     = 365
}

variable "queue_age_alarm_seconds" {
  description = "Queue id -> seconds its oldest message may wait before an alarm (default 600)."
  type        = map(number)
  default     = { agent = 900 }
}

variable "webhooks_backlog_threshold" {
  description = "Webhook deliveries due and not yet sent (relay.webhooks.backlog) above which, for 15 minutes, the backlog alarm fires."
  type        = number
  default     = 1000
}

variable "alarm_emails" {
  description = "E-mail addresses notified of alarms."
  type        = list(string)
  default     = []
}

variable "collector_image" {
  description = "ADOT collector image."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
