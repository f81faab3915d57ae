# The web frontend: a private S3 bucket holding the console's build, served only through CloudFront
# (origin access control), which also carries the API (/v1) so the console is same-origin with it.

data "aws_caller_identity" "current" {}

resource "aws_s3_bucket" "site" {
  #checkov:skip=CKV_AWS_144:the site is rebuilt from the repository; no cross-region replica needed
  #checkov:skip=CKV_AWS_145:SSE-S3 keeps the OAC setup simple; the files are public web assets
  #checkov:skip=CKV2_AWS_62:nothing reacts to uploads; deploys invalidate CloudFront explicitly
  bucket = "relay-${var.env}-frontend-${data.aws_caller_identity.current.account_id}"
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "site" {
  bucket                  = aws_s3_bucket.site.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "site" {
  bucket = aws_s3_bucket.site.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.site]
}

resource "aws_s3_bucket_logging" "site" {
  bucket        = aws_s3_bucket.site.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${aws_s3_bucket.site.id}/"
}

resource "aws_cloudfront_origin_access_control" "site" {
  name                              = "relay-${var.env}-frontend"
  description                       = "CloudFront reads the frontend bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# --- CloudFront: the console from S3 and /v1 from the API, one origin for the browser ---
#
# The build (console/dist, Vite's base /console/) is uploaded under the key prefix console/ by
# `relay console-deploy`, so the URLs are those of the local gateway (ADR 0014):
#   /v1/*               -> the API (the load balancer), no caching, every viewer header but Host
#                          (Authorization, WebSocket upgrades), every method
#   /console/assets/*   -> S3, hashed names: cached a year (objects carry immutable, max-age 1y)
#   everything else     -> S3 through the console-routes function (/ and /console redirect to
#                          /console/; app routes get /console/index.html), revalidated (no-cache)

locals {
  # AWS managed policies
  caching_optimized            = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  caching_disabled             = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host       = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
  origin_id                    = "frontend-bucket"
  api_origin_id                = "api"
  console_prefix               = "console"
  storage_sources              = join("", [for origin in var.storage_origins : " ${origin}"])
  content_security_policy      = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:${local.storage_sources}; connect-src 'self'${local.storage_sources}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
  hsts_max_age_seconds         = 31536000
  console_pages_max_ttl        = 300
  api_origin_timeout_seconds   = 60
  api_origin_keepalive_seconds = 60
}

resource "aws_cloudfront_function" "console_routes" {
  name    = "relay-${var.env}-console-routes"
  runtime = "cloudfront-js-2.0"
  comment = "/ and /console -> /console/; app routes under /console/ -> index.html"
  publish = true
  code    = file("${path.module}/console-routes.js")
}

# index.html and the other unhashed files: stored with Cache-Control no-cache, which a minimum
# TTL of 0 honours (not cached at the edge); compressed.
resource "aws_cloudfront_cache_policy" "console_pages" {
  name        = "relay-${var.env}-console-pages"
  comment     = "The console's index.html: revalidated on every load"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = local.console_pages_max_ttl

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_response_headers_policy" "security" {
  name    = "relay-${var.env}-frontend-security"
  comment = "Security headers for the Relay web console (the gateway sends the same locally)"

  security_headers_config {
    content_security_policy {
      content_security_policy = local.content_security_policy
      override                = true
    }
    strict_transport_security {
      access_control_max_age_sec = local.hsts_max_age_seconds
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "no-referrer"
      override        = true
    }
  }
}

# The API's own answers keep their headers; HTTPS is enforced and MIME sniffing off.
resource "aws_cloudfront_response_headers_policy" "api" {
  name    = "relay-${var.env}-frontend-api"
  comment = "Transport headers for /v1 through the Relay frontend"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = local.hsts_max_age_seconds
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
  }
}

resource "aws_cloudfront_distribution" "site" {
  #checkov:skip=CKV_AWS_310:one static origin; an outage of S3 in the region is not worth a replica bucket
  #checkov:skip=CKV_AWS_374:the product serves every country; no geo restriction
  #checkov:skip=CKV2_AWS_47:WAF is attached through var.web_acl_id (a CLOUDFRONT-scope ACL lives in us-east-1)
  #checkov:skip=CKV_AWS_68:WAF is attached through var.web_acl_id (a CLOUDFRONT-scope ACL lives in us-east-1)
  #checkov:skip=CKV2_AWS_42:a custom certificate is used when var.aliases and var.certificate_arn are set
  #checkov:skip=CKV_AWS_174:TLSv1.2_2021 applies with a custom certificate; the default *.cloudfront.net one is fixed by AWS
  enabled             = true
  comment             = "Relay ${var.env} web console and API"
  default_root_object = "${local.console_prefix}/index.html"
  price_class         = var.price_class
  aliases             = var.aliases
  web_acl_id          = var.web_acl_id
  http_version        = "http2and3"

  origin {
    origin_id                = local.origin_id
    domain_name              = aws_s3_bucket.site.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.site.id
  }

  # The API's load balancer by the name its certificate carries (CloudFront checks it).
  origin {
    origin_id   = local.api_origin_id
    domain_name = var.api_domain_name

    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_read_timeout      = local.api_origin_timeout_seconds
      origin_keepalive_timeout = local.api_origin_keepalive_seconds
    }
  }

  # The public API, WebSocket (/v1/ws) and SSE included: never cached, everything forwarded
  # but Host (CloudFront sends the origin's name, which the load balancer's certificate
  # covers). With caching disabled, the origin request policy forwards Authorization too.
  ordered_cache_behavior {
    path_pattern               = "/v1/*"
    target_origin_id           = local.api_origin_id
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = false
    cache_policy_id            = local.caching_disabled
    origin_request_policy_id   = local.all_viewer_except_host
    response_headers_policy_id = aws_cloudfront_response_headers_policy.api.id
  }

  # Hashed assets: a changed file is a new name, so a year in every cache.
  ordered_cache_behavior {
    path_pattern               = "/${local.console_prefix}/assets/*"
    target_origin_id           = local.origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_optimized
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
  }

  default_cache_behavior {
    target_origin_id           = local.origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = aws_cloudfront_cache_policy.console_pages.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.console_routes.arn
    }
  }

  # No custom_error_response: it would apply to /v1 too and turn the API's 403 and 404 into
  # index.html. The console-routes function gives app routes their index.html instead.

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.certificate_arn == null
    acm_certificate_arn            = var.certificate_arn
    ssl_support_method             = var.certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }

  logging_config {
    bucket          = var.access_log_bucket_domain_name
    prefix          = "cloudfront/"
    include_cookies = false
  }

  tags = var.tags
}

data "aws_iam_policy_document" "site" {
  statement {
    sid       = "CloudFrontReads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.site.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.site.arn]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.site.arn, "${aws_s3_bucket.site.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "site" {
  bucket     = aws_s3_bucket.site.id
  policy     = data.aws_iam_policy_document.site.json
  depends_on = [aws_s3_bucket_public_access_block.site]
}
