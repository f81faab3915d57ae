variable "endpoint" {
  description = "moto server's URL (the local stack's RELAY_STACK_MOTO_PORT, 5055 by default)."
  type        = string
  default     = "http://127.0.0.1:5055"
}

variable "env" {
  description = "Deployment name (RELAY_STACK_ENV)."
  type        = string
  default     = "local"
}

variable "region" {
  description = "Region moto answers for (RELAY_STACK_AWS_REGION)."
  type        = string
  default     = "us-east-1"
}

variable "routing_file" {
  description = "The routing declaration."
  type        = string
  default     = "../../../contracts/routing.yaml"
}

variable "console_origins" {
  description = "Where the local gateway serves the web console (http://127.0.0.1:<RELAY_STACK_GATEWAY_PORT>): the bucket lets it read artifacts (CORS)."
  type        = list(string)
  default     = ["http://127.0.0.1:8000", "http://localhost:8000"]
}
