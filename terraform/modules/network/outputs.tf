output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "cidr" {
  description = "The VPC's CIDR block."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Subnets for the services and databases (no public IPs, egress through NAT)."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Subnets for the load balancer and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "s3_prefix_list_id" {
  description = "The managed prefix list of S3 behind the VPC's gateway endpoint (for security group egress rules)."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}
