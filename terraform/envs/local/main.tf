# Relay's AWS topology on moto server: the bus, every service's queues, DLQs and rules, the
# artifacts bucket and the secrets, built from contracts/routing.yaml like on AWS. The compute,
# network and databases of envs/dev and envs/prod have no moto counterpart: the local stack
# runs the services as processes against local PostgreSQL and Redis.
#
# With edge = "apigateway" (edge.tf) it also declares the serverless HTTP edge on moto: the
# gateway's Lambda function and its HTTP API, through modules/serverless_edge as on AWS, on a
# stand-in VPC. moto creates them but cannot run a container-image function. Apply that to a
# moto the local stack does not use: a moto holding a Lambda function answers
# /moto-api/data.json (relay up's readiness probe) with 500 where there is no Docker.
#
#   terraform -chdir=terraform/envs/local init
#   terraform -chdir=terraform/envs/local apply -var endpoint=http://127.0.0.1:5055
#   RELAY_STACK_AWS_ENDPOINT_URL=http://127.0.0.1:5055 RELAY_STACK_BOOTSTRAP=false relay up

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.80" }
  }
}

provider "aws" {
  region                      = var.region
  access_key                  = "local" # moto takes any credentials; these reach nothing else
  secret_key                  = "local" #checkov:skip=CKV_AWS_41:dummy credentials for moto server, never real ones
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {
    events         = var.endpoint
    sqs            = var.endpoint
    s3             = var.endpoint
    secretsmanager = var.endpoint
    kms            = var.endpoint
    sts            = var.endpoint
    iam            = var.endpoint
    # edge = "apigateway" (edge.tf)
    apigatewayv2 = var.endpoint
    lambda       = var.endpoint
    logs         = var.endpoint
    cloudwatch   = var.endpoint
    sns          = var.endpoint
    ec2          = var.endpoint
    dynamodb     = var.endpoint
  }
}

module "routing" {
  source       = "../../modules/routing"
  routing_file = var.routing_file
  env          = var.env
}

module "event_bus" {
  source                 = "../../modules/event_bus"
  name                   = module.routing.bus_name
  archive_retention_days = null # moto keeps no archive worth replaying
}

module "queues" {
  source   = "../../modules/service_queues"
  for_each = toset(distinct([for queue in module.routing.queues : queue.service]))

  service      = each.key
  queues       = module.routing.queues
  rules        = module.routing.rules
  bus_name     = module.event_bus.name
  retry_policy = module.routing.target_retry_policy
}

module "artifacts" {
  source        = "../../modules/artifacts"
  name          = "relay-${var.env}-artifacts"
  tls_only      = false # moto serves plain HTTP
  force_destroy = true
  # the web console, served by the local gateway, previews artifacts (as the bootstrap allows)
  cors_allowed_origins = var.console_origins
}

module "secrets" {
  source                  = "../../modules/secrets"
  env                     = var.env
  recovery_window_in_days = 0
}
