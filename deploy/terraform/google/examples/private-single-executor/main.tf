# One executor and the registry mirror without public IPs: they reach the coordinator and Docker
# Hub through a Cloud NAT (allow its address, the nat_ip output, on the coordinator's firewall).
# The group scales between 0 and 3 executors on the queue size.

locals {
  project = "my-project"
  region  = "us-central1"
  zone    = "us-central1-c"
}

provider "google" {
  project = local.project
  region  = local.region
  zone    = local.zone
}

provider "google-beta" {
  project = local.project
  region  = local.region
  zone    = local.zone
}

module "executors" {
  source = "../.."

  region                                       = local.region
  zone                                         = local.zone
  private_networking                           = true
  executor_instance_tag                        = "batches-prod"
  executor_sourcegraph_external_url            = "https://sandfleet.example.com"
  executor_sourcegraph_executor_proxy_password = var.executor_proxy_password
  executor_queue_name                          = "batches"
  executor_metrics_environment_label           = "prod"
  executor_min_replicas                        = 0
  executor_max_replicas                        = 3
  executor_binary_url                          = var.executor_binary_url
  executor_binary_sha256                       = var.executor_binary_sha256
}

output "nat_ip" {
  value       = module.executors.nat_ip
  description = "The address the executors reach the coordinator from."
}
