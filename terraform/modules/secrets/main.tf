# Secrets Manager entries for what the services must not get in plain environment variables:
# the model provider keys, the gateway's signing key and the notifier's webhook encryption keys
# (Fernet keys sealing endpoint signing secrets in the database). Terraform creates the (empty)
# secrets and their KMS key; an operator puts the values (docs/deploy.md), so no secret value
# is ever in Terraform state or code.

resource "aws_kms_key" "secrets" {
  #checkov:skip=CKV2_AWS_64:the AWS default key policy (the account administers it); use is granted only by role policies naming this key
  description             = "relay-${var.env} secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/relay-${var.env}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

resource "aws_secretsmanager_secret" "this" {
  for_each = var.secrets

  #checkov:skip=CKV2_AWS_57:provider API keys, the signing key and the webhook encryption keys are made outside AWS; rotation is an operator runbook (docs/deploy.md, docs/operations.md), not a Lambda
  name                    = "relay/${var.env}/${each.key}"
  description             = each.value
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}
