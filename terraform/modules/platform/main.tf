# The whole of Relay in one AWS account and region: what envs/dev and envs/prod instantiate
# with their own sizes. Every module it composes is usable alone.

locals {
  name      = "relay-${var.env}"
  namespace = "${local.name}.internal"
  tags      = merge(var.tags, { Project = "relay", Environment = var.env })
  # Services the gateway calls over internal HTTP (RELAY_<NAME>_URL).
  upstreams = ["tasks", "artifacts", "notifier"]
  # Services given REDIS_URL: the gateway (WebSocket tickets) and the notifier (live fan-out).
  redis_clients = ["gateway", "notifier"]
  # The public entry: the ECS gateway behind the ALB, or the gateway as a Lambda function behind
  # API Gateway (ADR 0016); the other four services run on ECS in both.
  alb        = var.edge == "alb" ? 1 : 0
  apigateway = var.edge == "apigateway" ? 1 : 0
}

module "routing" {
  source       = "../routing"
  routing_file = var.routing_file
  env          = var.env
}

module "observability" {
  source          = "../observability"
  name            = local.name
  alarm_emails    = var.alarm_emails
  collector_image = var.collector_image

  dlq_names = flatten([for service in module.service : service.dlq_names])
  queue_age_thresholds = merge([
    for name, service in module.service : {
      for id, queue in service.queue_names : queue => lookup(var.queue_age_alarm_seconds, id, 600)
    }
  ]...)
  # edge = "apigateway" has its own alarms (modules/serverless_edge)
  load_balancer_alarms     = var.edge == "alb"
  load_balancer_arn_suffix = one(module.edge[*].arn_suffix)
  # the notifier's delivery backlog (its gauge carries env = RELAY_ENV)
  webhooks_backlog_env       = var.env
  webhooks_backlog_threshold = var.webhooks_backlog_threshold
  tags                       = local.tags
}

module "network" {
  source              = "../network"
  name                = local.name
  cidr                = var.vpc_cidr
  availability_zones  = var.availability_zones
  nat_gateways        = var.nat_gateways
  interface_endpoints = var.interface_endpoints
  log_kms_key_arn     = module.observability.log_kms_key_arn
  tags                = local.tags
}

module "event_bus" {
  source                 = "../event_bus"
  name                   = module.routing.bus_name
  archive_retention_days = var.event_archive_days
  tags                   = local.tags
}

module "secrets" {
  source = "../secrets"
  env    = var.env
  tags   = local.tags
}

# --- Artifacts bucket, encrypted with its own key ---

resource "aws_kms_key" "artifacts" {
  #checkov:skip=CKV2_AWS_64:the AWS default key policy (the account administers it); use is granted only by role policies naming this key
  description             = "${local.name} artifacts"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = local.tags
}

resource "aws_kms_alias" "artifacts" {
  name          = "alias/${local.name}-artifacts"
  target_key_id = aws_kms_key.artifacts.key_id
}

module "artifacts" {
  source            = "../artifacts"
  name              = "${local.name}-artifacts"
  kms_key_arn       = aws_kms_key.artifacts.arn
  access_log_bucket = module.observability.access_log_bucket
  # the web console (CloudFront) reads downloads for its previews
  cors_allowed_origins = var.frontend_enabled ? module.frontend[0].origins : []
  tags                 = local.tags
}

# --- Queues and DLQs, encrypted with the platform's own key ---

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "queues" {
  description             = "${local.name} queues"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.queues_key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "queues" {
  name          = "alias/${local.name}-queues"
  target_key_id = aws_kms_key.queues.key_id
}

# Who may use it: principals the account's IAM policies allow (each service's task role, on its
# own queues through SQS only, modules/service; operators running `relay dlq`), and EventBridge
# delivering the bus's rules into the queues and the delivery DLQs (the rule's ARN is the
# request's aws:SourceArn). SQS moves a message to its DLQ itself and needs no grant.
data "aws_iam_policy_document" "queues_key" {
  #checkov:skip=CKV_AWS_109:a key policy's resource "*" is the key itself; this is AWS's default account statement
  #checkov:skip=CKV_AWS_111:a key policy's resource "*" is the key itself; this is AWS's default account statement
  #checkov:skip=CKV_AWS_356:a key policy's resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "EventBridgeRulesDeliver"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    # the rules on Relay's bus only (named from routing.yaml, so known before they exist)
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:events:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:rule/${module.routing.bus_name}/*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# --- Cluster and internal service discovery ---

resource "aws_ecs_cluster" "this" {
  name = local.name
  # Container Insights: per-service RunningTaskCount drives the agent's scaling.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = local.namespace
  description = "Internal names of the Relay services (tasks.${local.namespace}, ...)"
  vpc         = module.network.vpc_id
  tags        = local.tags
}

# --- One security group per service; made here so the rules between services can name them ---

resource "aws_security_group" "service" {
  #checkov:skip=CKV2_AWS_5:attached to each service's ECS tasks through module.service (security_group_ids)
  for_each = var.services

  name        = "${local.name}-${each.key}"
  description = "Relay ${each.key} tasks"
  vpc_id      = module.network.vpc_id
  tags        = local.tags
}

# Out: only the agent (the model provider's public API) and the notifier (webhook deliveries to
# whatever URL a tenant registered, on 443, 80 or the port a URL names; the WebSocket API's
# management endpoint) reach the internet, through NAT. What keeps the notifier from private,
# loopback, link-local and metadata addresses (the VPC's databases, 169.254.169.254) is the
# notifier itself, which refuses URLs resolving there (RELAY_WEBHOOKS_ALLOW_PRIVATE is never set
# here, see var.services); with nat_gateways = "none" no webhook can be delivered. The gateway,
# tasks and artifacts reach the VPC alone (each other, PostgreSQL, Redis, the interface
# endpoints) and S3 through its gateway endpoint (artifacts, image layers): a compromised one of
# them cannot send data anywhere else.
locals {
  internet_egress = toset([for name in keys(var.services) : name if contains(["agent", "notifier"], name)])
  vpc_egress      = toset([for name in keys(var.services) : name if !contains(local.internet_egress, name)])
}

resource "aws_vpc_security_group_egress_rule" "service_out" {
  #checkov:skip=CKV_AWS_382:the agent reaches the model provider's public API and the notifier webhook URLs tenants register anywhere on the internet; bounded by NAT, IAM and the notifier's own refusal of private addresses
  for_each = local.internet_egress

  security_group_id = aws_security_group.service[each.key].id
  description       = "Outbound, through NAT to the internet"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "service_in_vpc" {
  for_each = local.vpc_egress

  security_group_id = aws_security_group.service[each.key].id
  description       = "Within the VPC: services, PostgreSQL, Redis, interface endpoints"
  cidr_ipv4         = module.network.cidr
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "service_to_s3" {
  for_each = local.vpc_egress

  security_group_id = aws_security_group.service[each.key].id
  description       = "S3 through the gateway endpoint (artifacts, image layers)"
  prefix_list_id    = module.network.s3_prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "gateway_from_alb" {
  count = local.alb

  security_group_id            = aws_security_group.service["gateway"].id
  description                  = "HTTP from the load balancer"
  referenced_security_group_id = module.edge[0].security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

resource "aws_vpc_security_group_ingress_rule" "upstream_from_gateway" {
  for_each = toset(local.upstreams)

  security_group_id            = aws_security_group.service[each.key].id
  description                  = "Internal HTTP from the gateway"
  referenced_security_group_id = aws_security_group.service["gateway"].id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

module "data" {
  source                          = "../data"
  name                            = local.name
  vpc_id                          = module.network.vpc_id
  subnet_ids                      = module.network.private_subnet_ids
  postgres_client_security_groups = { for name, sg in aws_security_group.service : name => sg.id }
  redis_client_security_groups    = { for name in local.redis_clients : name => aws_security_group.service[name].id }
  postgres_instance_class         = var.postgres_instance_class
  multi_az                        = var.multi_az
  backup_retention_days           = var.backup_retention_days
  deletion_protection             = var.deletion_protection
  redis_node_type                 = var.redis_node_type
  redis_nodes                     = var.redis_nodes
  tags                            = local.tags
}

module "edge" {
  source                    = "../edge"
  count                     = local.alb
  name                      = local.name
  vpc_id                    = module.network.vpc_id
  public_subnet_ids         = module.network.public_subnet_ids
  gateway_security_group_id = aws_security_group.service["gateway"].id
  certificate_arn           = var.api_certificate_arn
  allowed_cidrs             = var.api_allowed_cidrs
  deletion_protection       = var.deletion_protection
  access_log_bucket         = module.observability.access_log_bucket
  log_kms_key_arn           = module.observability.log_kms_key_arn
  rate_limit_per_5_minutes  = var.waf_rate_limit_per_5_minutes
  public_api_docs           = var.public_api_docs
  public_probes             = var.public_probes
  tags                      = local.tags
}

# edge = "apigateway": the gateway as Lambda functions behind an API Gateway HTTP API and a
# WebSocket API, from the gateway's repository and tag, told what the ECS gateway is told
# (services.tf), in the private subnets with the gateway's security group; the APIs' names are
# api_domain_name and ws_domain_name. The notifier delivers to the WebSocket API's connections
# from the module's DynamoDB table (services.tf tells it both and lets it use them).
module "serverless_edge" {
  source = "../serverless_edge"
  count  = local.apigateway

  name            = local.name
  env             = var.env
  image_uri       = module.service["gateway"].image
  repository_name = module.service["gateway"].repository_name
  architecture    = var.serverless_edge.architecture
  memory_size     = var.serverless_edge.memory_size
  timeout_seconds = var.serverless_edge.timeout_seconds

  reserved_concurrency = var.serverless_edge.reserved_concurrency

  environment             = local.service_environment["gateway"]
  secrets                 = local.service_secrets["gateway"]
  secret_arns             = local.service_secret_arns["gateway"]
  secret_kms_key_arns     = local.secret_kms_key_arns
  environment_kms_key_arn = local.secrets_key_arn
  subnet_ids              = module.network.private_subnet_ids
  security_group_ids      = [aws_security_group.service["gateway"].id]

  throttling_burst_limit = var.serverless_edge.throttling_burst_limit
  throttling_rate_limit  = var.serverless_edge.throttling_rate_limit
  domain_name            = var.api_domain_name
  ws_domain_name         = var.ws_domain_name
  certificate_arn        = var.api_certificate_arn
  route53_zone_id        = var.api_zone_id
  deletion_protection    = var.deletion_protection

  log_retention_days = var.log_retention_days
  log_kms_key_arn    = module.observability.log_kms_key_arn
  alarm_topic_arn    = module.observability.alarm_topic_arn
  tags               = local.tags
}

module "frontend" {
  source = "../frontend"
  count  = var.frontend_enabled ? 1 : 0

  env                           = var.env
  api_domain_name               = var.api_domain_name
  storage_origins               = module.artifacts.download_origins
  aliases                       = var.frontend_aliases
  certificate_arn               = var.frontend_certificate_arn
  web_acl_id                    = var.frontend_web_acl_id
  access_log_bucket             = module.observability.access_log_bucket
  access_log_bucket_domain_name = module.observability.access_log_bucket_domain_name
  tags                          = local.tags
}

# Before edge, the load balancer and its rule had no count: their state moves to instance [0]
# (edge = "alb", the default), so nothing is replaced.
moved {
  from = module.edge
  to   = module.edge[0]
}

moved {
  from = aws_vpc_security_group_ingress_rule.gateway_from_alb
  to   = aws_vpc_security_group_ingress_rule.gateway_from_alb[0]
}
