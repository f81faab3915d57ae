variable "name" {
  description = "Name prefix, relay-<env> (functions relay-<env>-gateway and relay-<env>-gateway-ws, APIs relay-<env>-http and relay-<env>-ws, table relay-<env>-ws-connections)."
  type        = string
}

variable "env" {
  description = "Deployment name (RELAY_ENV)."
  type        = string
}

variable "image_uri" {
  description = "The gateway image the function runs: <the gateway's ECR repository URL>:<image tag>, the same image the ECS gateway runs."
  type        = string
}

variable "repository_name" {
  description = "The gateway's ECR repository: its policy lets Lambda pull the image for this function only. null = the repository's policy is managed elsewhere."
  type        = string
  default     = null
}

variable "architecture" {
  description = "x86_64 or arm64; must match the image."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture: x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Each function's memory in MB (CPU grows with it)."
  type        = number
  default     = 1024
}

variable "timeout_seconds" {
  description = "Each function's timeout, and its integration's: at most 29 s, API Gateway's limit for an integration."
  type        = number
  default     = 29

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 29
    error_message = "timeout_seconds: 1 to 29 (API Gateway ends an integration after 29 s)."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) each function, HTTP and WebSocket; null = unreserved, from the account's pool."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null || try(var.reserved_concurrency >= 1, false)
    error_message = "reserved_concurrency: null or at least 1 (0 would stop the API)."
  }
}

variable "environment" {
  description = "The gateway's plain environment (what the ECS gateway is told, without its HTTP listener settings). Never secrets: those go in `secrets`."
  type        = map(string)
  default     = {}

  # Lambda sets these itself and refuses a function that sets them.
  validation {
    condition = alltrue([for key in keys(var.environment) : !contains([
      "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
      "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
      "LAMBDA_RUNTIME_DIR", "_HANDLER", "_X_AMZN_TRACE_ID",
    ], key)])
    error_message = "environment: Lambda's reserved variables (AWS_REGION, AWS_LAMBDA_*, ...) cannot be set."
  }
}

variable "secrets" {
  description = "Environment variable -> Secrets Manager reference in the ECS form, <secret-arn> or <secret-arn>:<json-key>:: (the ECS gateway's `secrets`). Passed as RELAY_LAMBDA_SECRETS (JSON); the function reads the values at cold start."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for reference in values(var.secrets) : startswith(reference, "arn:")])
    error_message = "secrets: each value is a secret's ARN (optionally ARN:json-key::), never a secret value."
  }
}

variable "secret_arns" {
  description = "The secrets the function may read (plain secret ARNs of `secrets`)."
  type        = list(string)
  default     = []
}

variable "secret_kms_key_arns" {
  description = "KMS keys encrypting those secrets (decrypt via Secrets Manager only)."
  type        = list(string)
  default     = []
}

variable "environment_kms_key_arn" {
  description = "KMS key encrypting the function's environment variables at rest."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the function runs in (those of the services)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "The function's security groups: the gateway's, which the upstream services, PostgreSQL and Redis admit."
  type        = list(string)
}

variable "throttling_burst_limit" {
  description = "Requests the HTTP API's stage admits in a burst (every route)."
  type        = number
  default     = 500
}

variable "throttling_rate_limit" {
  description = "Requests per second the HTTP API's stage admits, sustained (every route)."
  type        = number
  default     = 1000
}

variable "ws_domain_name" {
  description = "The WebSocket API's custom domain name (ws.example.com); null = its execute-api stage URL only (output ws_url)."
  type        = string
  default     = null
}

variable "ws_stage_name" {
  description = "The WebSocket API's stage: the path of its execute-api URL (wss://<id>.execute-api.<region>.amazonaws.com/<stage>)."
  type        = string
  default     = "live"
}

variable "ws_throttling_burst_limit" {
  description = "Messages (connects and client frames) the WebSocket stage admits in a burst."
  type        = number
  default     = 200
}

variable "ws_throttling_rate_limit" {
  description = "Messages (connects and client frames) per second the WebSocket stage admits, sustained."
  type        = number
  default     = 100
}

variable "ws_errors_threshold" {
  description = "Failed WebSocket route calls (IntegrationError, ExecutionError) in 5 minutes above which their alarms fire."
  type        = number
  default     = 10
}

variable "deletion_protection" {
  description = "Protect the connections table from deletion (prod: on). Its items are short-lived, but a deleted table drops every live connection's subscriptions."
  type        = bool
  default     = false
}

variable "domain_name" {
  description = "The API's custom domain name (api.example.com); null = the API's execute-api endpoint only."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate in this region covering domain_name and ws_domain_name (both names, or a wildcard); null with route53_zone_id = one per name is issued and validated in that zone."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of domain_name and ws_domain_name: alias A and AAAA records to each API's custom domain are made there (and the certificates' validation records). null = point the names yourself (outputs dns_target, ws_dns_target)."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days the function's logs and the API's access logs are kept."
  type        = number
  default     = 365
}

variable "log_kms_key_arn" {
  description = "KMS key encrypting the log groups."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic the alarms notify; null = alarms without actions."
  type        = string
  default     = null
}

variable "function_errors_threshold" {
  description = "Failed invocations (crashes, timeouts) in 5 minutes above which the errors alarm fires."
  type        = number
  default     = 5
}

variable "http_5xx_threshold" {
  description = "5xx answers in 5 minutes above which the API's 5xx alarm fires."
  type        = number
  default     = 10
}

variable "integration_latency_p99_threshold_ms" {
  description = "p99 integration latency (ms) above which, for three 5-minute periods, the latency alarm fires."
  type        = number
  default     = 10000
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
