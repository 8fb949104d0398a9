# One executor on a public IP, with the registry mirror, and the credentials the coordinator
# publishes the queue-size metric with.

provider "aws" {
  region = "us-west-2"
}

module "executors" {
  source = "../.."

  availability_zone                            = "us-west-2a"
  executor_instance_tag                        = "codeintel-prod"
  executor_sourcegraph_external_url            = "https://sandfleet.example.com"
  executor_sourcegraph_executor_proxy_password = var.executor_proxy_password
  executor_queue_name                          = "codeintel"
  executor_metrics_environment_label           = "prod"
  executor_machine_type                        = "c6i.2xlarge"
  executor_binary_url                          = var.executor_binary_url
  executor_binary_sha256                       = var.executor_binary_sha256
}

module "credentials" {
  source = "../../modules/credentials"

  resource_prefix = "prod"
}

output "metric_writer_access_key_id" {
  value       = module.credentials.metric_writer_access_key_id
  description = "The coordinator's EXECUTOR_METRIC_AWS_ACCESS_KEY_ID."
}

output "metric_writer_secret_key" {
  value       = module.credentials.metric_writer_secret_key
  sensitive   = true
  description = "The coordinator's EXECUTOR_METRIC_AWS_SECRET_ACCESS_KEY."
}
