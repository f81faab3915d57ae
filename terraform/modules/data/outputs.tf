output "postgres_address" {
  description = "PostgreSQL host name."
  value       = aws_db_instance.postgres.address
}

output "postgres_port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.postgres.port
}

output "postgres_database" {
  description = "Database name; each service uses its own schema in it."
  value       = aws_db_instance.postgres.db_name
}

output "postgres_username" {
  description = "Master user name."
  value       = aws_db_instance.postgres.username
}

output "postgres_secret_arn" {
  description = "Secrets Manager secret RDS manages with the master credentials (JSON: username, password)."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  description = "The key encrypting the databases and the master user secret."
  value       = aws_kms_key.data.arn
}

output "redis_url" {
  description = "Redis URL for the gateway and the notifier (TLS), without the AUTH token: what to put, with it, in relay/<env>/redis-url."
  value       = "rediss://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0"
}
