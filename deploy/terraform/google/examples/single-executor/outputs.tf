output "metric_writer_credentials_file" {
  value       = module.credentials.metric_writer_credentials_file
  sensitive   = true
  description = "Base64 service account JSON for the coordinator's EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE_CONTENT (decoded)."
}
