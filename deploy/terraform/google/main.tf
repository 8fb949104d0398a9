module "networking" {
  source = "./modules/networking"

  region                   = var.region
  nat                      = var.private_networking
  resource_prefix          = var.executor_resource_prefix
  randomize_resource_names = var.randomize_resource_names
}

module "docker-mirror" {
  source = "./modules/docker-mirror"

  zone                     = var.zone
  network_id               = module.networking.network_id
  subnet_id                = module.networking.subnet_id
  machine_image            = var.docker_mirror_machine_image
  machine_type             = var.docker_mirror_machine_type
  boot_disk_size           = var.docker_mirror_boot_disk_size
  http_access_cidr_ranges  = [module.networking.ip_cidr]
  instance_tag_prefix      = var.executor_instance_tag
  assign_public_ip         = !var.private_networking
  resource_prefix          = var.executor_resource_prefix
  randomize_resource_names = var.randomize_resource_names
  use_local_ssd            = var.docker_mirror_use_local_ssd
}

module "executors" {
  source = "./modules/executors"

  zone                                     = var.zone
  network_id                               = module.networking.network_id
  subnet_id                                = module.networking.subnet_id
  resource_prefix                          = var.executor_resource_prefix
  machine_image                            = var.executor_machine_image
  machine_type                             = var.executor_machine_type
  boot_disk_size                           = var.executor_use_local_ssd && var.executor_boot_disk_size == 100 ? 10 : var.executor_boot_disk_size
  preemptible_machines                     = var.executor_preemptible_machines
  instance_tag                             = var.executor_instance_tag
  sourcegraph_external_url                 = var.executor_sourcegraph_external_url
  sourcegraph_executor_proxy_password      = var.executor_sourcegraph_executor_proxy_password
  queue_name                               = var.executor_queue_name
  queue_names                              = var.executor_queue_names
  maximum_runtime_per_job                  = var.executor_maximum_runtime_per_job
  maximum_num_jobs                         = var.executor_maximum_num_jobs
  num_total_jobs                           = var.executor_num_total_jobs
  max_active_time                          = var.executor_max_active_time
  job_num_cpus                             = var.executor_job_num_cpus != "" ? var.executor_job_num_cpus : tostring(var.executor_firecracker_num_cpus)
  firecracker_num_cpus                     = var.executor_firecracker_num_cpus
  job_memory                               = var.executor_job_memory != "" ? var.executor_job_memory : var.executor_firecracker_memory
  firecracker_memory                       = var.executor_firecracker_memory
  firecracker_disk_space                   = var.executor_firecracker_disk_space
  use_firecracker                          = var.executor_use_firecracker
  min_replicas                             = var.executor_min_replicas
  max_replicas                             = var.executor_max_replicas
  jobs_per_instance_scaling                = var.executor_jobs_per_instance_scaling
  metrics_environment_label                = var.executor_metrics_environment_label
  docker_registry_mirror                   = "http://${module.docker-mirror.ip_address}:5000"
  docker_registry_mirror_node_exporter_url = "http://${module.docker-mirror.ip_address}:9999"
  assign_public_ip                         = !var.private_networking
  docker_auth_config                       = var.executor_docker_auth_config
  randomize_resource_names                 = var.randomize_resource_names
  use_local_ssd                            = var.executor_use_local_ssd
  private_ca_cert_path                     = var.private_ca_cert_path
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
  runtime                                  = var.executor_runtime
  drain_timeout_seconds                    = var.executor_drain_timeout_seconds
}
