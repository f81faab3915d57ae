variable "routing_file" {
  description = "Path to contracts/routing.yaml, the one routing declaration."
  type        = string
}

variable "env" {
  description = "Deployment name: bus relay-<env>, queues relay-<env>-<service>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.env))
    error_message = "env: lower-case letters, digits and '-', starting with a letter, at most 20 characters."
  }
}
