# Two executor groups, one per queue, sharing one network and one registry mirror: the
# submodules wired by hand, as the root module wires them for a single group. The groups use
# random-suffixed names: a service account id holds at most 30 characters, too few for a prefix
# plus the legacy name.

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

module "networking" {
  source = "../../modules/networking"

  region = local.region
}

module "docker-mirror" {
  source = "../../modules/docker-mirror"

  zone                    = local.zone
  network_id              = module.networking.network_id
  subnet_id               = module.networking.subnet_id
  http_access_cidr_ranges = [module.networking.ip_cidr]
  instance_tag_prefix     = "prod"
}

module "executors-codeintel" {
  source = "../../modules/executors"

  zone                                     = local.zone
  network_id                               = module.networking.network_id
  subnet_id                                = module.networking.subnet_id
  resource_prefix                          = "codeintel-"
  randomize_resource_names                 = true
  instance_tag                             = "codeintel-prod"
  sourcegraph_external_url                 = "https://sandfleet.example.com"
  sourcegraph_executor_proxy_password      = var.executor_proxy_password
  queue_name                               = "codeintel"
  metrics_environment_label                = "prod"
  min_replicas                             = 0
  max_replicas                             = 5
  docker_registry_mirror                   = "http://${module.docker-mirror.ip_address}:5000"
  docker_registry_mirror_node_exporter_url = "http://${module.docker-mirror.ip_address}:9999"
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
}

module "executors-batches" {
  source = "../../modules/executors"

  zone                                     = local.zone
  network_id                               = module.networking.network_id
  subnet_id                                = module.networking.subnet_id
  resource_prefix                          = "batches-"
  randomize_resource_names                 = true
  instance_tag                             = "batches-prod"
  sourcegraph_external_url                 = "https://sandfleet.example.com"
  sourcegraph_executor_proxy_password      = var.executor_proxy_password
  queue_name                               = "batches"
  metrics_environment_label                = "prod"
  min_replicas                             = 0
  max_replicas                             = 5
  docker_registry_mirror                   = "http://${module.docker-mirror.ip_address}:5000"
  docker_registry_mirror_node_exporter_url = "http://${module.docker-mirror.ip_address}:9999"
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
}
