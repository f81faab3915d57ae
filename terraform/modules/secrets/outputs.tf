output "arns" {
  description = "Secret name -> ARN."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.arn }
}

output "names" {
  description = "Secret name -> full secret name (relay/<env>/<name>)."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.name }
}

output "kms_key_arn" {
  description = "The key encrypting the secrets (kms:Decrypt for whoever reads one)."
  value       = aws_kms_key.secrets.arn
}
