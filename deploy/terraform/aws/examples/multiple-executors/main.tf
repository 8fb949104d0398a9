# Two executor groups, one per queue, sharing one network and one registry mirror: the
# submodules wired by hand, as the root module wires them for a single group.

locals {
  availability_zone = "us-west-2a"
  mirror_ip         = "10.0.1.4"
}

provider "aws" {
  region = "us-west-2"
}

module "networking" {
  source = "../../modules/networking"

  availability_zone = local.availability_zone
}

module "docker-mirror" {
  source = "../../modules/docker-mirror"

  vpc_id                 = module.networking.vpc_id
  subnet_id              = module.networking.subnet_id
  static_ip              = local.mirror_ip
  http_access_cidr_range = module.networking.ip_cidr
  instance_tag_prefix    = "prod"
}

module "executors-codeintel" {
  source = "../../modules/executors"

  vpc_id                                   = module.networking.vpc_id
  subnet_id                                = module.networking.subnet_id
  resource_prefix                          = "codeintel-"
  machine_type                             = "c6i.2xlarge"
  instance_tag                             = "codeintel-prod"
  sourcegraph_external_url                 = "https://sandfleet.example.com"
  sourcegraph_executor_proxy_password      = var.executor_proxy_password
  queue_name                               = "codeintel"
  metrics_environment_label                = "prod"
  min_replicas                             = 0
  max_replicas                             = 5
  docker_registry_mirror                   = "http://${local.mirror_ip}:5000"
  docker_registry_mirror_node_exporter_url = "http://${local.mirror_ip}:9999"
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
}

module "executors-batches" {
  source = "../../modules/executors"

  vpc_id                                   = module.networking.vpc_id
  subnet_id                                = module.networking.subnet_id
  resource_prefix                          = "batches-"
  machine_type                             = "c6i.2xlarge"
  instance_tag                             = "batches-prod"
  sourcegraph_external_url                 = "https://sandfleet.example.com"
  sourcegraph_executor_proxy_password      = var.executor_proxy_password
  queue_name                               = "batches"
  metrics_environment_label                = "prod"
  min_replicas                             = 0
  max_replicas                             = 5
  docker_registry_mirror                   = "http://${local.mirror_ip}:5000"
  docker_registry_mirror_node_exporter_url = "http://${local.mirror_ip}:9999"
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
}
