output "docker_mirror_ip_address" {
  value       = module.docker-mirror.ip_address
  description = "Sandfleet addition: the registry mirror's static internal IP."
}

output "nat_ip" {
  value       = module.networking.nat_ip
  description = "Sandfleet addition: the NAT's public IPs with private_networking (allow them on the coordinator's firewall)."
}
