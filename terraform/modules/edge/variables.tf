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
  description = "Idle seconds before the load balancer closes a connection; above the SSE heartbeat (RELAY_SSE_HEARTBEAT_SECONDS) so streams stay open."
  type        = number
  default     = 300
}

variable "deregistration_delay_seconds" {
  description = "How long a stopping gateway keeps its connections (the gateway's shutdown grace)."
  type        = number
  default     = 30
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
