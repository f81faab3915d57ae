variable "name" {
  description = "Name prefix, relay-<env>."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two zones at least) for the databases."
  type        = list(string)
}

variable "postgres_client_security_groups" {
  description = "Name -> security group allowed to reach PostgreSQL (every service)."
  type        = map(string)
}

variable "redis_client_security_groups" {
  description = "Name -> security group allowed to reach Redis (the gateway: WebSocket tickets; the notifier: live fan-out)."
  type        = map(string)
}

variable "postgres_major_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "postgres_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "postgres_storage_gb" {
  description = "Initial storage in GB (autoscaling up to 4x)."
  type        = number
  default     = 50
}

variable "multi_az" {
  description = "A standby in a second zone (prod)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Refuse to delete the database (turn off deliberately before a teardown)."
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_nodes" {
  description = "Redis nodes (2 or more: automatic failover across zones)."
  type        = number
  default     = 2
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
