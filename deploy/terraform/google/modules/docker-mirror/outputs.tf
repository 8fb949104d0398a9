output "ip_address" {
  value       = google_compute_address.static.address
  description = "The mirror's static internal IP; the registry listens on port 5000, the metrics exporter on 9999."
}
