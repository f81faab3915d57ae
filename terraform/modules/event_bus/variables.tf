variable "name" {
  description = "Bus name, relay-<env> (the routing module's bus_name)."
  type        = string
}

variable "archive_retention_days" {
  description = "Days the archive keeps events (0 = forever); null = no archive."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for the bus."
  type        = map(string)
  default     = {}
}
