output "dns_name" {
  description = "The load balancer's DNS name (point the API's domain at it)."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "The load balancer's hosted zone (Route 53 alias records)."
  value       = aws_lb.this.zone_id
}

output "arn_suffix" {
  description = "For CloudWatch metrics (5xx alarms)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn" {
  description = "The gateway's target group."
  value       = aws_lb_target_group.gateway.arn
}

output "security_group_id" {
  description = "The load balancer's security group."
  value       = aws_security_group.alb.id
}

output "idle_timeout_seconds" {
  description = "The load balancer's idle timeout; the gateway keeps idle connections longer (RELAY_HTTP_KEEP_ALIVE_SECONDS), so the balancer never reuses one the gateway has closed (a 502)."
  value       = aws_lb.this.idle_timeout
}
