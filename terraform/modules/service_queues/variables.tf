variable "service" {
  description = "The consuming service (a key of routing.yaml's services)."
  type        = string
}

variable "queues" {
  description = "The routing module's queues output (every service's; this module keeps its own)."
  type        = any
}

variable "rules" {
  description = "The routing module's rules output (every rule; this module keeps those to its queues)."
  type        = any
}

variable "bus_name" {
  description = "The EventBridge bus the rules live on."
  type        = string
}

variable "retry_policy" {
  description = "The routing module's target_retry_policy output."
  type = object({
    maximum_retry_attempts    = number
    maximum_event_age_seconds = number
  })
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the queues and both DLQs; its key policy must let events.amazonaws.com use it (kms:GenerateDataKey, kms:Decrypt) for these rules, or EventBridge cannot deliver (modules/platform's key does). null = SQS-managed encryption (SSE-SQS), which needs no key policy (envs/local, as the local bootstrap)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every queue and rule."
  type        = map(string)
  default     = {}
}
