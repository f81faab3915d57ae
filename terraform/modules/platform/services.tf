# The five services: what each is told (environment, injected secrets) and may do (IAM beyond
# its own queues and events, which the service module grants itself).

locals {
  bucket_arn      = module.artifacts.arn
  secrets_key_arn = module.secrets.kms_key_arn
  anthropic_key   = module.secrets.arns["anthropic-api-key"]
  signing_key     = module.secrets.arns["internal-auth-private-key"]
  webhooks_keys   = module.secrets.arns["webhooks-encryption-keys"]
  jwks            = module.secrets.arns["internal-auth-jwks"]
  # Redis with its AUTH token in the URL: injected, never a plain variable (docs/deploy.md)
  redis_url = module.secrets.arns["redis-url"]

  # Every service: PostgreSQL as its own role, owner of its schema alone (made by `relay db
  # roles` with the master user; relay_ops.stack.roles), without the password in the URL: libpq
  # reads PGPASSWORD, injected from the service's own secret. The master user's secret (RDS
  # manages it) is given to no service.
  database_urls = {
    for name in keys(var.services) :
    name => "postgresql://${module.data.postgres_database}_${name}@${module.data.postgres_address}:${module.data.postgres_port}/${module.data.postgres_database}?sslmode=require"
  }
  database_passwords = { for name in keys(var.services) : name => module.secrets.arns["database-${name}"] }
  # The gateway's public key, and the JWKS secret re-read every minute: a rotation is secret
  # writes, not deploys (docs/operations.md).
  common_environment = {
    RELAY_INTERNAL_AUTH_PUBLIC_KEY     = var.internal_auth_public_key
    RELAY_INTERNAL_AUTH_JWKS_SECRET_ID = local.jwks
  }

  environment = {
    gateway = merge(
      { for upstream in local.upstreams : "RELAY_${upper(upstream)}_URL" => "http://${upstream}.${local.namespace}:8000" },
      # re-read every minute: a new signing key put there is used without a deploy
      { RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID = local.signing_key },
      # the API docs on either edge (the load balancer also filters them; API Gateway cannot)
      { RELAY_PUBLIC_API_DOCS = tostring(var.public_api_docs) },
      # longer than the load balancer keeps an idle connection, so it never reuses a closed one
      # (the Lambda function behind API Gateway keeps no connection)
      { for timeout in module.edge[*].idle_timeout_seconds : "RELAY_HTTP_KEEP_ALIVE_SECONDS" => tostring(timeout + 5) },
    )
    tasks = {}
    agent = merge(
      { RELAY_ARTIFACTS_BUCKET = module.artifacts.name, RELAY_LLM_PROVIDER = var.llm_provider },
      var.llm_provider == "anthropic" ? { RELAY_ANTHROPIC_API_KEY_SECRET_ID = local.anthropic_key } : {},
    )
    notifier = merge(
      # edge = "apigateway": it keeps the WebSocket API's connections and posts to them
      var.edge == "apigateway" ? {
        RELAY_EDGE_CONNECTIONS_TABLE = module.serverless_edge[0].connections_table_name
        RELAY_EDGE_WS_ENDPOINT       = module.serverless_edge[0].ws_management_endpoint
      } : {},
    )
    artifacts = { RELAY_ARTIFACTS_BUCKET = module.artifacts.name }
  }

  secrets = {
    # Redis: WebSocket tickets and rate limits (gateway), live fan-out (notifier)
    gateway = { RELAY_INTERNAL_AUTH_PRIVATE_KEY = local.signing_key, REDIS_URL = local.redis_url }
    # Fernet keys sealing webhook endpoint secrets in the database; only the notifier holds them
    notifier = { RELAY_WEBHOOKS_ENCRYPTION_KEYS = local.webhooks_keys, REDIS_URL = local.redis_url }
  }
  secret_arns = {
    gateway  = [local.signing_key, local.redis_url]
    notifier = [local.webhooks_keys, local.redis_url]
  }

  # What each service is told and given, on ECS or (the gateway, edge = "apigateway") on Lambda;
  # modules/service adds what only ECS needs (HTTP listener, region, OTLP sidecar, grace).
  service_environment = {
    for name, service in var.services :
    name => merge(local.common_environment, { DATABASE_URL = local.database_urls[name] }, lookup(local.environment, name, {}), service.environment)
  }
  service_secrets     = { for name in keys(var.services) : name => merge({ PGPASSWORD = local.database_passwords[name] }, lookup(local.secrets, name, {})) }
  service_secret_arns = { for name in keys(var.services) : name => concat([local.database_passwords[name]], lookup(local.secret_arns, name, [])) }
  secret_kms_key_arns = [module.data.kms_key_arn, local.secrets_key_arn]

  # Every service re-reads the trusted keys (and the gateway its signing key) at run time, as
  # its task role: the execution role only injects secrets at start.
  key_statements = {
    for name in keys(var.services) : name => [
      {
        sid       = "ReadInternalAuthKeys"
        actions   = ["secretsmanager:GetSecretValue"]
        resources = name == "gateway" ? [local.jwks, local.signing_key] : [local.jwks]
      },
      {
        sid       = "DecryptInternalAuthKeys"
        actions   = ["kms:Decrypt"]
        resources = [local.secrets_key_arn]
        conditions = [{
          test     = "StringEquals"
          variable = "kms:ViaService"
          values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
        }]
      },
    ]
  }

  own_statements = {
    # Candidates with a `when`; the agent gets those that apply to its provider.
    agent = [for statement in [
      {
        # Each attempt uploads once, to its own new key, where the artifact is served from
        # after the artifacts service verifies it: creating is allowed, overwriting is not
        # (a PUT without If-None-Match is refused; ADR 0023).
        when      = true
        sid       = "UploadArtifacts"
        actions   = ["s3:PutObject"]
        resources = ["${local.bucket_arn}/artifacts/*"]
        conditions = [{
          test     = "Null"
          variable = "s3:if-none-match"
          values   = ["false"]
        }]
      },
      {
        when      = true
        sid       = "EncryptArtifacts"
        actions   = ["kms:GenerateDataKey"]
        resources = [aws_kms_key.artifacts.arn]
      },
      {
        when      = var.llm_provider == "anthropic"
        sid       = "ReadProviderKey"
        actions   = ["secretsmanager:GetSecretValue"]
        resources = [local.anthropic_key]
      },
      {
        when      = var.llm_provider == "anthropic"
        sid       = "DecryptProviderKey"
        actions   = ["kms:Decrypt"]
        resources = [local.secrets_key_arn]
        conditions = [{
          test     = "StringEquals"
          variable = "kms:ViaService"
          values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
        }]
      },
      {
        when      = var.llm_provider == "bedrock" && length(var.bedrock_model_arns) > 0
        sid       = "InvokeClaude"
        actions   = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
        resources = var.bedrock_model_arns
      },
    ] : statement if statement.when]
    # Candidates with a `when`, as the agent's; with edge = "apigateway" the notifier keeps the
    # WebSocket API's connections (notifier/edge_aws.py) and posts to them.
    notifier = [for statement in [
      {
        # The collector sidecar's awsemf exporter writes the notifier's metrics as EMF records
        # to this log group (creating it and its streams if missing); without it no metric,
        # and so no relay.webhooks.backlog alarm, reaches CloudWatch.
        when      = true
        sid       = "WriteMetrics"
        actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
        resources = [module.observability.collector_metrics_log_group_arn, "${module.observability.collector_metrics_log_group_arn}:*"]
      },
      {
        when      = local.apigateway == 1
        sid       = "WebSocketConnections"
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:Scan"]
        resources = local.apigateway == 1 ? [module.serverless_edge[0].connections_table_arn, "${module.serverless_edge[0].connections_table_arn}/index/*"] : []
      },
      {
        when      = local.apigateway == 1
        sid       = "WebSocketConnectionsKey"
        actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources = local.apigateway == 1 ? [module.serverless_edge[0].connections_key_arn] : []
        conditions = [{
          test     = "StringEquals"
          variable = "kms:ViaService"
          values   = ["dynamodb.${data.aws_region.current.name}.amazonaws.com"]
        }]
      },
      {
        # PostToConnection on this stage's connections only
        when      = local.apigateway == 1
        sid       = "PostToConnections"
        actions   = ["execute-api:ManageConnections"]
        resources = local.apigateway == 1 ? [module.serverless_edge[0].ws_connections_arn] : []
      },
    ] : statement if statement.when]
    artifacts = [
      {
        # GetObject covers the HEAD that verifies an upload and the presigned downloads, which
        # are signed as this role; it neither writes nor deletes objects (ADR 0023)
        sid       = "VerifyAndServe"
        actions   = ["s3:GetObject"]
        resources = ["${local.bucket_arn}/artifacts/*"]
      },
      {
        # Decrypt: a presigned download is read with this role's grant
        sid       = "ArtifactsKey"
        actions   = ["kms:Decrypt"]
        resources = [aws_kms_key.artifacts.arn]
      },
    ]
  }
}

data "aws_region" "current" {}

module "service" {
  source   = "../service"
  for_each = var.services

  name      = each.key
  env       = var.env
  image_tag = each.value.image_tag
  routing   = module.routing
  bus_name  = module.event_bus.name
  bus_arn   = module.event_bus.arn
  # its queues and DLQs (main.tf: the key policy lets the bus's rules deliver into them)
  queue_kms_key = { arn = aws_kms_key.queues.arn }

  cluster_arn        = aws_ecs_cluster.this.arn
  cluster_name       = aws_ecs_cluster.this.name
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [aws_security_group.service[each.key].id]
  discoverable       = each.key != "gateway"
  namespace_id       = each.key == "gateway" ? null : aws_service_discovery_private_dns_namespace.this.id
  target_group_arn   = each.key == "gateway" ? one(module.edge[*].target_group_arn) : null
  # edge = "apigateway": the gateway runs as a Lambda function (module.serverless_edge) from this
  # module's repository; only the repository is made here
  run_on_ecs = each.key != "gateway" || var.edge == "alb"

  cpu         = each.value.cpu
  memory      = each.value.memory
  min_count   = each.value.min_count
  max_count   = each.value.max_count
  autoscaling = each.key == "agent" ? { mode = "queue_backlog", target = each.value.scaling_target } : { mode = "cpu", target = each.value.scaling_target }

  environment            = local.service_environment[each.key]
  secrets                = local.service_secrets[each.key]
  secret_arns            = local.service_secret_arns[each.key]
  secret_kms_key_arns    = local.secret_kms_key_arns
  task_policy_statements = concat(lookup(local.own_statements, each.key, []), local.key_statements[each.key])

  collector              = module.observability.collector
  shutdown_grace_seconds = var.shutdown_grace_seconds
  log_retention_days     = var.log_retention_days
  log_kms_key_arn        = module.observability.log_kms_key_arn
  tags                   = local.tags
}
