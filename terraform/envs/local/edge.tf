# edge = "apigateway" on moto: modules/serverless_edge as dev and prod use it, on stand-ins for
# what the platform gives it there (a VPC with two subnets and the gateway's security group, the
# RDS-managed database secret, the alarm topic). The function is told what the gateway is told
# locally, its secrets only as references (RELAY_LAMBDA_SECRETS); moto makes the function and the
# API but runs neither, so the local stack still serves HTTP with its own gateway process.

locals {
  apigateway = var.edge == "apigateway" ? 1 : 0
}

resource "aws_vpc" "edge" {
  #checkov:skip=CKV2_AWS_11:a stand-in VPC on moto server; nothing flows through it
  #checkov:skip=CKV2_AWS_12:a stand-in VPC on moto server; nothing runs in it
  count = local.apigateway

  cidr_block = "10.99.0.0/16"
  tags       = { Name = "relay-${var.env}" }
}

resource "aws_subnet" "edge" {
  count = var.edge == "apigateway" ? 2 : 0

  vpc_id            = aws_vpc.edge[0].id
  cidr_block        = cidrsubnet("10.99.0.0/16", 4, count.index)
  availability_zone = "${var.region}${["a", "b"][count.index]}"
}

resource "aws_security_group" "gateway" {
  #checkov:skip=CKV2_AWS_5:attached to the gateway function through modules/serverless_edge
  count = local.apigateway

  name        = "relay-${var.env}-gateway"
  description = "Relay gateway function (stand-in on moto)"
  vpc_id      = aws_vpc.edge[0].id
}

# RDS manages this secret on AWS (JSON: username, password); here an empty stand-in to point at.
resource "aws_secretsmanager_secret" "database" {
  #checkov:skip=CKV2_AWS_57:a stand-in for the RDS-managed secret, which RDS rotates on AWS
  count = local.apigateway

  name                    = "relay/${var.env}/database"
  kms_key_id              = module.secrets.kms_key_arn
  recovery_window_in_days = 0
}

resource "aws_sns_topic" "alarms" {
  count = local.apigateway

  name              = "relay-${var.env}-alarms"
  kms_master_key_id = module.secrets.kms_key_arn
}

module "serverless_edge" {
  source = "../../modules/serverless_edge"
  count  = local.apigateway

  name      = "relay-${var.env}"
  env       = var.env
  image_uri = var.gateway_image_uri

  # the local stack's defaults (relay_ops.stack.config)
  environment = {
    DATABASE_URL        = "postgresql://relay@127.0.0.1:5432/relay"
    REDIS_URL           = "redis://127.0.0.1:6379/0"
    RELAY_TASKS_URL     = "http://127.0.0.1:8101"
    RELAY_ARTIFACTS_URL = "http://127.0.0.1:8104"
    RELAY_NOTIFIER_URL  = "http://127.0.0.1:8103"
  }
  secrets = {
    PGPASSWORD                      = "${aws_secretsmanager_secret.database[0].arn}:password::"
    RELAY_INTERNAL_AUTH_PRIVATE_KEY = module.secrets.arns["internal-auth-private-key"]
  }
  secret_arns             = [aws_secretsmanager_secret.database[0].arn, module.secrets.arns["internal-auth-private-key"]]
  secret_kms_key_arns     = [module.secrets.kms_key_arn]
  environment_kms_key_arn = module.secrets.kms_key_arn
  subnet_ids              = aws_subnet.edge[*].id
  security_group_ids      = [aws_security_group.gateway[0].id]

  log_retention_days = 365
  log_kms_key_arn    = module.secrets.kms_key_arn
  alarm_topic_arn    = aws_sns_topic.alarms[0].arn
}
