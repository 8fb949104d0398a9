output "instance_group_manager" {
  value       = google_compute_instance_group_manager.executor.id
  description = "Sandfleet addition: the managed instance group the executors run in."
}

output "service_account_email" {
  value       = google_service_account.sa.email
  description = "Sandfleet addition: the service account the executors run as."
}
