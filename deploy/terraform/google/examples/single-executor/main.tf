# One executor on a public IP, with the registry mirror, and the credentials the coordinator
# publishes the queue-size metric with.

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
  executor_instance_tag                        = "codeintel-prod"
  executor_sourcegraph_external_url            = "https://sandfleet.example.com"
  executor_sourcegraph_executor_proxy_password = var.executor_proxy_password
  executor_queue_name                          = "codeintel"
  executor_metrics_environment_label           = "prod"
  executor_binary_url                          = var.executor_binary_url
  executor_binary_sha256                       = var.executor_binary_sha256
}

module "credentials" {
  source = "../../modules/credentials"

  resource_prefix = ""
}
