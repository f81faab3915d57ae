variable "name" {
  description = "Name prefix, relay-<env>."
  type        = string
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "dlq_names" {
  description = "Every DLQ and delivery DLQ; each gets an alarm when it holds a message."
  type        = list(string)
  default     = []
}

variable "queue_age_thresholds" {
  description = "Service queue name -> seconds its oldest message may wait before an alarm."
  type        = map(number)
  default     = {}
}

variable "load_balancer_alarms" {
  description = "Make the load balancer's 5xx alarms (on load_balancer_arn_suffix). A bool known when planning: the suffix itself is not known until the load balancer exists."
  type        = bool
  default     = false
}

variable "load_balancer_arn_suffix" {
  description = "The public load balancer's ARN suffix (the 5xx alarms' dimension, with load_balancer_alarms)."
  type        = string
  default     = null
}

variable "http_5xx_threshold" {
  description = "5xx answers in 5 minutes above which the 5xx alarms fire."
  type        = number
  default     = 10
}

variable "webhooks_backlog_env" {
  description = "RELAY_ENV of the notifier whose relay.webhooks.backlog gauge is watched (its env dimension); null = no backlog alarm."
  type        = string
  default     = null
}

variable "webhooks_backlog_threshold" {
  description = "Webhook deliveries due and not yet sent above which, for three 5-minute periods in a row (the maximum of each), the backlog alarm fires."
  type        = number
  default     = 1000
}

variable "access_log_days" {
  description = "Days access logs are kept."
  type        = number
  default     = 90
}

variable "collector_image" {
  description = "The ADOT collector image (mirror it into your ECR when the VPC has no internet egress)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
