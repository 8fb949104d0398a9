output "metric_writer_access_key_id" {
  value       = aws_iam_access_key.metric_writer.id
  description = "The coordinator's EXECUTOR_METRIC_AWS_ACCESS_KEY_ID."
}

output "metric_writer_secret_key" {
  value       = aws_iam_access_key.metric_writer.secret
  sensitive   = true
  description = "The coordinator's EXECUTOR_METRIC_AWS_SECRET_ACCESS_KEY."
}
