variable "name" {
  description = "The service: gateway, tasks, agent, notifier or artifacts (runs as `python -m <name>`)."
  type        = string
}

variable "env" {
  description = "Deployment name (RELAY_ENV)."
  type        = string
}

variable "image_tag" {
  description = "Image tag to run from the service's own ECR repository. Tags are immutable: deploying a tag deploys exact bytes, and rolling back means deploying the previous tag."
  type        = string
}

variable "run_on_ecs" {
  description = "Run the service on ECS (task definition, ECS service, roles, log group, autoscaling). false: only its image repository and queues are made, for a service that runs from the same image elsewhere (the gateway as a Lambda function, edge = \"apigateway\")."
  type        = bool
  default     = true
}

variable "routing" {
  description = "The routing module's outputs (queues, rules, producers, target_retry_policy)."
  type        = any
}

variable "bus_name" {
  description = "The event bus."
  type        = string
}

variable "bus_arn" {
  description = "The event bus's ARN (events:PutEvents is allowed on it only)."
  type        = string
}

variable "queue_kms_key" {
  description = "Customer-managed KMS key ({ arn }) encrypting the service's queues and DLQs; its policy must let EventBridge (the rules feeding them) use it. The task role may then use it through SQS only. null = SQS-managed encryption. An object rather than an ARN so that whether there is a key is known when planning, before the key exists."
  type = object({
    arn = string
  })
  default = null
}

variable "cluster_arn" {
  description = "ECS cluster the service runs in."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name (autoscaling resource ids, Container Insights metrics)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks (the platform makes one per service)."
  type        = list(string)
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"
}

variable "min_count" {
  description = "Fewest running tasks (0 lets a queue worker scale to zero)."
  type        = number
  default     = 1
}

variable "max_count" {
  description = "Most running tasks."
  type        = number
  default     = 4
}

variable "autoscaling" {
  description = "mode \"cpu\" (target = average CPU %) or \"queue_backlog\" (target = messages waiting or in progress per running task, on the service's main queue)."
  type = object({
    mode   = string
    target = number
  })
  default = { mode = "cpu", target = 60 }

  validation {
    condition     = contains(["cpu", "queue_backlog"], var.autoscaling.mode)
    error_message = "autoscaling.mode: cpu or queue_backlog."
  }
}

variable "environment" {
  description = "Plain environment variables (RELAY_* settings). Never secrets: those go in `secrets`."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variable -> Secrets Manager ARN (optionally ARN:json-key::) injected by ECS at start."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Secrets the execution role may read to inject `secrets` (plain secret ARNs)."
  type        = list(string)
  default     = []
}

variable "secret_kms_key_arns" {
  description = "KMS keys encrypting those secrets (decrypt via Secrets Manager only)."
  type        = list(string)
  default     = []
}

variable "task_policy_statements" {
  description = "Extra IAM statements for the service's own role (S3 prefixes, a provider key secret): sid, actions, resources, optional conditions [{test, variable, values}]."
  type        = any
  default     = []
}

variable "collector" {
  description = "The observability module's collector output (ADOT sidecar); null = no tracing sidecar."
  type = object({
    image         = string
    command       = list(string)
    otlp_endpoint = string
  })
  default = null
}

variable "target_group_arn" {
  description = "Load balancer target group the service registers in (the gateway); null = none."
  type        = string
  default     = null
}

variable "namespace_id" {
  description = "Cloud Map namespace for <name>.<namespace> DNS (the gateway calls tasks, artifacts, notifier there); needed with discoverable."
  type        = string
  default     = null
}

variable "discoverable" {
  description = "Register the service as <name>.<namespace> in namespace_id (false: nobody calls it by name, as the gateway)."
  type        = bool
  default     = true
}

variable "shutdown_grace_seconds" {
  description = "RELAY_SHUTDOWN_GRACE_SECONDS: in-flight work may finish this long after SIGTERM (ECS waits 10 s more, at most 120 s)."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days the service's logs are kept."
  type        = number
  default     = 365
}

variable "log_kms_key_arn" {
  description = "KMS key encrypting the log group."
  type        = string
}

variable "images_kept" {
  description = "Images kept in the repository (older ones expire); rollback can go back this far."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
