variable "name" {
  description = "Name prefix, relay-<env>."
  type        = string
}

variable "cidr" {
  description = "The VPC's CIDR block (a /16 leaves room: /20 private and /24 public subnets per zone)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Zones to spread subnets over (two at least: RDS and the load balancer need two)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "nat_gateways" {
  description = "\"one\" (cheap, one zone's NAT carries all egress), \"per_zone\" (survives a zone outage) or \"none\" (no internet egress: Bedrock only, images mirrored to ECR, no webhook deliveries)."
  type        = string
  default     = "one"

  validation {
    condition     = contains(["one", "per_zone", "none"], var.nat_gateways)
    error_message = "nat_gateways: one, per_zone or none."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints (S3 always has a gateway endpoint). Add bedrock-runtime for RELAY_LLM_PROVIDER=bedrock."
  type        = list(string)
  default     = ["events", "sqs", "secretsmanager", "logs", "ecr.api", "ecr.dkr", "xray", "kms"]
}

variable "log_retention_days" {
  description = "Days VPC flow logs are kept."
  type        = number
  default     = 365
}

variable "log_kms_key_arn" {
  description = "KMS key encrypting the flow log group (its policy must allow CloudWatch Logs)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
