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

variable "edge" {
  description = "\"alb\" (the topology only: the local stack serves HTTP itself) or \"apigateway\": also the gateway's Lambda function and its HTTP API on moto (edge.tf), which moto creates but cannot run (use a moto the stack does not use: with a Lambda function, moto's /moto-api/data.json fails without Docker)."
  type        = string
  default     = "alb"

  validation {
    condition     = contains(["alb", "apigateway"], var.edge)
    error_message = "edge: \"alb\" or \"apigateway\"."
  }
}

variable "gateway_image_uri" {
  description = "With edge = \"apigateway\": the image the gateway function names (moto does not pull it)."
  type        = string
  default     = "123456789012.dkr.ecr.us-east-1.amazonaws.com/relay-local-gateway:local"
}
