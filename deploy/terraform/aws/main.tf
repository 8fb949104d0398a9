module "networking" {
  source = "./modules/networking"

  availability_zone        = var.availability_zone
  nat                      = var.private_networking
  resource_prefix          = var.executor_resource_prefix
  randomize_resource_names = var.randomize_resource_names
}

module "docker-mirror" {
  source = "./modules/docker-mirror"

  vpc_id                                 = module.networking.vpc_id
  subnet_id                              = module.networking.subnet_id
  machine_ami                            = var.docker_mirror_machine_ami
  machine_type                           = var.docker_mirror_machine_type
  ami_version                            = var.ami_version
  boot_disk_size                         = var.docker_mirror_boot_disk_size
  disk_iops                              = var.docker_mirror_disk_iops
  static_ip                              = var.docker_mirror_static_ip
  ssh_access_cidr_range                  = var.docker_mirror_ssh_access_cidr_range
  http_access_cidr_range                 = module.networking.ip_cidr
  instance_tag_prefix                    = var.executor_instance_tag
  assign_public_ip                       = !var.private_networking
  docker_mirror_access_security_group_id = var.security_group_id
  resource_prefix                        = var.executor_resource_prefix
  randomize_resource_names               = var.randomize_resource_names
  permissions_boundary_arn               = var.permissions_boundary_arn
}

module "executors" {
  source = "./modules/executors"

  vpc_id                                   = module.networking.vpc_id
  subnet_id                                = module.networking.subnet_id
  resource_prefix                          = var.executor_resource_prefix
  machine_image                            = var.executor_machine_image
  machine_type                             = var.executor_machine_type
  ami_version                              = var.ami_version
  boot_disk_size                           = var.executor_boot_disk_size
  boot_disk_iops                           = var.executor_boot_disk_iops
  preemptible_machines                     = var.executor_preemptible_machines
  instance_tag                             = var.executor_instance_tag
  ssh_access_cidr_range                    = var.executor_ssh_access_cidr_range
  sourcegraph_external_url                 = var.executor_sourcegraph_external_url
  sourcegraph_executor_proxy_password      = var.executor_sourcegraph_executor_proxy_password
  queue_name                               = var.executor_queue_name
  queue_names                              = var.executor_queue_names
  maximum_runtime_per_job                  = var.executor_maximum_runtime_per_job
  maximum_num_jobs                         = var.executor_maximum_num_jobs
  num_total_jobs                           = var.executor_num_total_jobs
  max_active_time                          = var.executor_max_active_time
  firecracker_num_cpus                     = var.executor_firecracker_num_cpus
  job_num_cpus                             = var.executor_job_num_cpus != "" ? var.executor_job_num_cpus : tostring(var.executor_firecracker_num_cpus)
  firecracker_memory                       = var.executor_firecracker_memory
  job_memory                               = var.executor_job_memory != "" ? var.executor_job_memory : var.executor_firecracker_memory
  firecracker_disk_space                   = var.executor_firecracker_disk_space
  use_firecracker                          = var.executor_use_firecracker
  min_replicas                             = var.executor_min_replicas
  max_replicas                             = var.executor_max_replicas
  jobs_per_instance_scaling                = var.executor_jobs_per_instance_scaling
  metrics_environment_label                = var.executor_metrics_environment_label
  docker_registry_mirror                   = "http://${var.docker_mirror_static_ip}:5000"
  docker_registry_mirror_node_exporter_url = "http://${var.docker_mirror_static_ip}:9999"
  assign_public_ip                         = !var.private_networking
  metrics_access_security_group_id         = var.security_group_id
  docker_auth_config                       = var.executor_docker_auth_config
  randomize_resource_names                 = var.randomize_resource_names
  permissions_boundary_arn                 = var.permissions_boundary_arn
  private_ca_cert_path                     = var.private_ca_cert_path
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
  runtime                                  = var.executor_runtime
  drain_timeout_seconds                    = var.executor_drain_timeout_seconds
}
