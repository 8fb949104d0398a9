# Executors and the registry mirror in a private subnet, without public IPs: they reach the
# coordinator and Docker Hub through a NAT gateway (allow its address, the nat_ip output, on the
# coordinator's firewall). The group scales between 0 and 3 executors on the queue size.

provider "aws" {
  region = "us-west-2"
}

module "executors" {
  source = "../.."

  availability_zone                            = "us-west-2a"
  private_networking                           = true
  executor_instance_tag                        = "batches-prod"
  executor_sourcegraph_external_url            = "https://sandfleet.example.com"
  executor_sourcegraph_executor_proxy_password = var.executor_proxy_password
  executor_queue_name                          = "batches"
  executor_metrics_environment_label           = "prod"
  executor_machine_type                        = "c6i.2xlarge"
  executor_min_replicas                        = 0
  executor_max_replicas                        = 3
  executor_binary_url                          = var.executor_binary_url
  executor_binary_sha256                       = var.executor_binary_sha256
}

output "nat_ip" {
  value       = module.executors.nat_ip
  description = "The address the executors reach the coordinator from."
}
