output "ip_address" {
  value       = var.static_ip
  description = "Sandfleet addition: the mirror's private IP; the registry listens on port 5000, the metrics exporter on 9999."
}
