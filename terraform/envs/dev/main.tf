# Relay's dev environment. State lives in S3 (backend.hcl, not checked in):
#   terraform -chdir=terraform/envs/dev init -backend-config=backend.hcl
#   terraform -chdir=terraform/envs/dev apply -var-file=dev.tfvars
# See docs/deploy.md for the first-time bootstrap and deploying one service.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.80" }
  }
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { ManagedBy = "terraform", Repository = "relay" }
  }
}

module "relay" {
  source = "../../modules/platform"

  env                      = "dev"
  routing_file             = "${path.module}/../../../contracts/routing.yaml"
  services                 = var.services
  internal_auth_public_key = var.internal_auth_public_key
  llm_provider             = var.llm_provider
  availability_zones       = var.availability_zones
  edge                     = var.edge
  api_certificate_arn      = var.api_certificate_arn
  api_domain_name          = var.api_domain_name
  ws_domain_name           = var.ws_domain_name
  api_zone_id              = var.api_zone_id
  alarm_emails             = var.alarm_emails

  webhooks_backlog_threshold = var.webhooks_backlog_threshold

  waf_rate_limit_per_5_minutes = var.waf_rate_limit_per_5_minutes
  public_api_docs              = var.public_api_docs
  public_probes                = var.public_probes

  # dev: small and cheap; it may be torn down.
  vpc_cidr                = "10.40.0.0/16"
  nat_gateways            = "one"
  postgres_instance_class = "db.t4g.small"
  multi_az                = false
  backup_retention_days   = 7
  redis_nodes             = 1
  redis_node_type         = "cache.t4g.micro"
  deletion_protection     = false
  event_archive_days      = 7
}
