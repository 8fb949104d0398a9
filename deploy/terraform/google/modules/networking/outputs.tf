output "network_id" {
  value       = google_compute_network.default.id
  description = "The network the executors and the mirror are attached to."
}

output "subnet_id" {
  value       = google_compute_subnetwork.default.id
  description = "The subnetwork the executors and the mirror are attached to."
}

output "ip_cidr" {
  value       = local.ip_cidr
  description = "The subnetwork's range (10.0.1.0/24)."
}

output "nat_ip" {
  value       = google_compute_address.nat[*].address
  description = "The NAT's public IPs (empty without NAT): allow these on the coordinator's firewall."
}
