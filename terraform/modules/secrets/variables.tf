variable "env" {
  description = "Deployment name; secrets are named relay/<env>/<name>."
  type        = string
}

variable "secrets" {
  description = "Secret name -> what it holds. The values are put by an operator, never by Terraform."
  type        = map(string)
  default = {
    "anthropic-api-key"         = "Anthropic API key for the agent (RELAY_ANTHROPIC_API_KEY_SECRET_ID)"
    "internal-auth-private-key" = "Gateway's Ed25519 signing key, base64url (RELAY_INTERNAL_AUTH_PRIVATE_KEY)"
    "internal-auth-jwks"        = "Public keys the services trust for internal tokens, a JWKS (RELAY_INTERNAL_AUTH_JWKS_SECRET_ID)"
    "webhooks-encryption-keys"  = "Fernet keys, newest first, comma-separated (RELAY_WEBHOOKS_ENCRYPTION_KEYS)"
    "redis-url"                 = "rediss://:<AUTH token>@<host>:6379/0 for the gateway and the notifier (REDIS_URL)"
    "database-gateway"          = "Password of the gateway's database role (relay db roles)"
    "database-tasks"            = "Password of the tasks service's database role (relay db roles)"
    "database-agent"            = "Password of the agent's database role (relay db roles)"
    "database-notifier"         = "Password of the notifier's database role (relay db roles)"
    "database-artifacts"        = "Password of the artifacts service's database role (relay db roles)"
  }
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can be restored (0 = delete at once; local only)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for the secrets and their key."
  type        = map(string)
  default     = {}
}
