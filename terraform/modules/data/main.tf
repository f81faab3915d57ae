# PostgreSQL (RDS; one schema per service, each service migrates its own at start-up) and Redis
# (ElastiCache; the notifier's live fan-out and the gateway's WebSocket tickets). Both encrypted,
# private, reachable only from the services' security groups.

resource "aws_kms_key" "data" {
  #checkov:skip=CKV2_AWS_64:the AWS default key policy (the account administers it); use is granted only by role policies naming this key
  description             = "${var.name} databases"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

# --- PostgreSQL ---

resource "aws_security_group" "postgres" {
  name        = "${var.name}-postgres"
  description = "PostgreSQL, from the Relay services only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each = var.postgres_client_security_groups

  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-pg${var.postgres_major_version}-"
  family      = "postgres${var.postgres_major_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  # Slow statements and DDL only: statements carry tenants' prompts, which logs must not.
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  # What keeps prompts out of those lines: the services bind values server-side (psycopg 3's
  # default cursors), so a logged statement's text holds $1, $2 ... and never a value. But the
  # line of a slow statement adds "DETAIL: parameters: $1 = '...'" unless log_parameter_max_length
  # is 0 (its default, -1, logs every value whole), and an error's does unless
  # log_parameter_max_length_on_error is 0 (the default, pinned here). Both: PostgreSQL 13+.
  parameter {
    name  = "log_parameter_max_length"
    value = "0"
  }
  parameter {
    name  = "log_parameter_max_length_on_error"
    value = "0"
  }

  lifecycle {
    create_before_destroy = true
  }
  tags = var.tags
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  #checkov:skip=CKV_AWS_293:deletion protection follows deletion_protection (prod: on); dev may be torn down
  #checkov:skip=CKV_AWS_157:multi-AZ follows multi_az (prod: on); dev runs one instance
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.postgres_major_version
  instance_class = var.postgres_instance_class
  db_name        = "relay"
  username       = "relay"
  # RDS generates the password and keeps it in Secrets Manager: it is never in Terraform state.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.data.arn

  allocated_storage     = var.postgres_storage_gb
  max_allocated_storage = var.postgres_storage_gb * 4
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.data.arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  multi_az               = var.multi_az

  backup_retention_period   = var.backup_retention_days
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.monitoring.arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.data.arn

  tags = var.tags
}

# --- Redis ---

resource "aws_security_group" "redis" {
  # Who may connect is the ingress rules' (var.redis_client_security_groups: the gateway and the
  # notifier). The description predates the gateway's access and stays: changing it replaces
  # the group, which Redis is using.
  name        = "${var.name}-redis"
  description = "Redis, from the notifier only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  for_each = var.redis_client_security_groups

  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_elasticache_replication_group" "redis" {
  #checkov:skip=CKV2_AWS_50:multi-AZ failover follows redis_nodes > 1 (prod: 2); dev runs one node
  #checkov:skip=CKV_AWS_31:the AUTH token is set out of band (relay/<env>/redis-url; docs/deploy.md), never through Terraform, whose state would keep it; until then Redis is reachable only from the gateway's and the notifier's security groups, over TLS
  replication_group_id       = var.name
  description                = "Relay live fan-out (notifier pub/sub) and WebSocket tickets (gateway, short TTL); holds no durable data"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = var.redis_nodes
  automatic_failover_enabled = var.redis_nodes > 1
  multi_az_enabled           = var.redis_nodes > 1
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  kms_key_id                 = aws_kms_key.data.arn
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = 1
  apply_immediately          = false
  tags                       = var.tags

  # The AUTH token is set and rotated with `aws elasticache modify-replication-group
  # --auth-token` (docs/deploy.md, "Redis AUTH"), its value kept in Secrets Manager only: with the
  # aws provider mirrored here (5.100) auth_token is not write-only, so Terraform would keep it
  # in state. Terraform leaves it alone.
  lifecycle {
    ignore_changes = [auth_token, auth_token_update_strategy]
  }
}
