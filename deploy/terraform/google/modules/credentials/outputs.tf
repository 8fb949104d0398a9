output "metric_writer_credentials_file" {
  value       = google_service_account_key.metric_writer.private_key
  sensitive   = true
  description = "The metric writer's key, a base64-encoded service account JSON: decode it into the coordinator's EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE (or its _CONTENT)."
}
