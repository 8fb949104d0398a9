resource "random_id" "suffix" {
  count       = var.randomize_resource_names ? 1 : 0
  byte_length = 2
}

locals {
  suffix = var.randomize_resource_names ? "-${random_id.suffix[0].hex}" : ""
  # Fixed legacy names unless randomize_resource_names is set.
  service_account_id = var.randomize_resource_names ? "${var.resource_prefix}executors${local.suffix}" : "${var.resource_prefix}sourcegraph-executors"
  name_prefix        = var.randomize_resource_names ? "${var.resource_prefix}executors${local.suffix}" : "${var.resource_prefix}sourcegraph-executor"
  network_tag        = "${var.resource_prefix}executor${local.suffix}"

  boot_image = var.machine_image != "" ? var.machine_image : "debian-cloud/debian-13"

  # The autoscaler follows the coordinator's queue-size metric for exactly these queues.
  metric_filter = "resource.type = \"global\" AND metric.labels.queueName = \"${module.startup.queue_label}\" AND metric.labels.environment = \"${var.metrics_environment_label}\""
}

data "google_project" "current" {}

module "startup" {
  source = "../../../shared/executor-install"

  frontend_url            = var.sourcegraph_external_url
  frontend_password       = var.sourcegraph_executor_proxy_password
  queue_name              = var.queue_name
  queue_names             = var.queue_names
  maximum_runtime_per_job = var.maximum_runtime_per_job
  maximum_num_jobs        = var.maximum_num_jobs
  num_total_jobs          = var.num_total_jobs
  max_active_time         = var.max_active_time
  job_num_cpus            = var.job_num_cpus != "" ? var.job_num_cpus : tostring(var.firecracker_num_cpus)
  job_memory              = var.job_memory != "" ? var.job_memory : var.firecracker_memory
  firecracker_disk_space  = var.firecracker_disk_space
  use_firecracker         = var.use_firecracker
  # Google's public Docker Hub mirror first, then our own pull-through mirror.
  docker_registry_mirror_urls              = ["https://mirror.gcr.io", var.docker_registry_mirror]
  docker_registry_mirror_node_exporter_url = var.docker_registry_mirror_node_exporter_url
  docker_auth_config                       = var.docker_auth_config
  private_ca_cert_path                     = var.private_ca_cert_path
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
  runtime                                  = var.runtime
  drain_timeout_seconds                    = var.drain_timeout_seconds
}

resource "google_service_account" "sa" {
  account_id   = local.service_account_id
  display_name = "Sandfleet executors"
}

resource "google_project_iam_member" "service_account_iam_log_writer" {
  project = data.google_project.current.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.sa.email}"
}

resource "google_project_iam_member" "service_account_iam_metric_writer" {
  project = data.google_project.current.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.sa.email}"
}

resource "google_compute_instance_template" "executor-instance-template" {
  provider     = google-beta
  name_prefix  = "${local.name_prefix}-"
  machine_type = var.machine_type
  tags         = [local.network_tag]
  labels       = merge({ executor_tag = var.instance_tag }, var.labels)

  scheduling {
    automatic_restart = false
    preemptible       = var.preemptible_machines
  }

  service_account {
    email  = google_service_account.sa.email
    scopes = ["logging-write", "monitoring-write"]
  }

  disk {
    boot         = true
    source_image = local.boot_image
    disk_type    = "pd-ssd"
    disk_size_gb = var.boot_disk_size
  }

  dynamic "disk" {
    for_each = var.use_local_ssd ? [1] : []
    content {
      device_name  = "executor-pd"
      disk_type    = "local-ssd"
      type         = "SCRATCH"
      interface    = "NVME"
      disk_size_gb = 375
    }
  }

  network_interface {
    network    = var.network_id
    subnetwork = var.subnet_id

    dynamic "access_config" {
      for_each = var.assign_public_ip ? [1] : []
      content {
        network_tier = "PREMIUM"
      }
    }
  }

  metadata = {
    # Runs when the group deletes the VM: the executor drains before the VM goes away.
    shutdown-script = file("${path.module}/shutdown-script.sh")
  }

  metadata_startup_script = templatefile("${path.module}/startup-script.sh.tpl", {
    install_executor = module.startup.script
    use_local_ssd    = tostring(var.use_local_ssd)
  })

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_instance_group_manager" "executor" {
  name               = local.name_prefix
  zone               = var.zone
  base_instance_name = local.name_prefix

  version {
    name              = "primary"
    instance_template = google_compute_instance_template.executor-instance-template.id
  }

  update_policy {
    type              = "PROACTIVE"
    minimal_action    = "REPLACE"
    max_surge_percent = 100
  }

  lifecycle {
    # The autoscaler owns the size.
    ignore_changes = [target_size]
  }
}

resource "google_compute_autoscaler" "executor-autoscaler" {
  provider = google-beta
  name     = "${local.name_prefix}-autoscaler"
  zone     = var.zone
  target   = google_compute_instance_group_manager.executor.id

  autoscaling_policy {
    min_replicas    = var.min_replicas
    max_replicas    = var.max_replicas
    cooldown_period = 300

    # size = ceil(queue size / jobs_per_instance_scaling), clamped to [min_replicas, max_replicas].
    metric {
      name                       = "custom.googleapis.com/executors/queue/size"
      filter                     = local.metric_filter
      single_instance_assignment = var.jobs_per_instance_scaling
    }
  }
}

resource "google_compute_firewall" "executor-ssh-access" {
  name          = "${local.name_prefix}-ssh-access"
  network       = var.network_id
  target_tags   = [local.network_tag]
  source_ranges = ["35.235.240.0/20"] # Identity-Aware Proxy's TCP forwarding

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}
