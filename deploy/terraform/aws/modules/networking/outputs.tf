output "vpc_id" {
  value       = aws_vpc.default.id
  description = "The VPC."
}

output "subnet_id" {
  value       = aws_subnet.default.id
  description = "The subnet of the executors and the mirror (the private one with NAT)."
}

output "ip_cidr" {
  value       = local.ip_cidr
  description = "That subnet's range (10.0.1.0/24)."
}

output "nat_ip" {
  value       = aws_eip.nat[*].public_ip
  description = "The NAT gateway's public IPs (empty without NAT): allow these on the coordinator's firewall."
}
