output "nat_ip" {
  value       = module.networking.nat_ip
  description = "Sandfleet addition: the NAT gateway's public IPs with private_networking (allow them on the coordinator's firewall)."
}
