resource "random_id" "suffix" {
  count       = var.randomize_resource_names ? 1 : 0
  byte_length = 2
}

locals {
  suffix      = var.randomize_resource_names ? "-${random_id.suffix[0].hex}" : ""
  name        = var.randomize_resource_names ? "${var.resource_prefix}docker-mirror${local.suffix}" : "${var.resource_prefix}sourcegraph-executors-docker-registry-mirror"
  network_tag = "${var.resource_prefix}docker-registry-mirror${local.suffix}"
  boot_image  = var.machine_image != "" ? var.machine_image : "debian-cloud/debian-13"
  labels      = merge({ executor_tag = "${var.instance_tag_prefix}-docker-mirror" }, var.labels)
}

resource "google_service_account" "sa" {
  account_id   = var.randomize_resource_names ? "${var.resource_prefix}docker-mirror${local.suffix}" : "${var.resource_prefix}sg-executor-docker-registry"
  display_name = "Sandfleet executors' registry mirror"
}

data "google_project" "current" {}

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

# The cached images live on their own disk, so replacing the VM keeps them.
resource "google_compute_disk" "registry-data" {
  count  = var.use_local_ssd ? 0 : 1
  name   = "${local.name}-data"
  type   = "pd-ssd"
  zone   = var.zone
  size   = var.disk_size
  labels = local.labels
}

# The executors are configured with this address, so it must not change with the VM.
resource "google_compute_address" "static" {
  name         = var.randomize_resource_names ? "${var.resource_prefix}docker-mirror${local.suffix}" : "${var.resource_prefix}sg-executor-docker-registry-mirror"
  address_type = "INTERNAL"
  subnetwork   = var.subnet_id
  region       = join("-", slice(split("-", var.zone), 0, 2))
}

resource "google_compute_instance" "default" {
  name                      = local.name
  machine_type              = var.machine_type
  zone                      = var.zone
  tags                      = [local.network_tag]
  labels                    = local.labels
  allow_stopping_for_update = true

  service_account {
    email  = google_service_account.sa.email
    scopes = ["logging-write", "monitoring-write"]
  }

  boot_disk {
    initialize_params {
      image = local.boot_image
      size  = var.boot_disk_size
      type  = "pd-ssd"
    }
  }

  dynamic "attached_disk" {
    for_each = google_compute_disk.registry-data
    content {
      source      = attached_disk.value.id
      device_name = "registry-data"
    }
  }

  dynamic "scratch_disk" {
    for_each = var.use_local_ssd ? [1] : []
    content {
      interface = "NVME"
    }
  }

  network_interface {
    network    = var.network_id
    subnetwork = var.subnet_id
    network_ip = google_compute_address.static.address

    dynamic "access_config" {
      for_each = var.assign_public_ip ? [1] : []
      content {
        network_tier = "PREMIUM"
      }
    }
  }

  metadata_startup_script = templatefile("${path.module}/../../../shared/registry-mirror/startup-script.sh.tpl", {
    data_devices = var.use_local_ssd ? "/dev/disk/by-id/google-local-nvme-ssd-0" : "/dev/disk/by-id/google-registry-data"
  })
}

resource "google_compute_firewall" "http" {
  name          = "${local.name}-http"
  network       = var.network_id
  target_tags   = [local.network_tag]
  source_ranges = var.http_access_cidr_ranges

  allow {
    protocol = "icmp"
  }

  allow {
    protocol = "tcp"
    ports    = ["5000", "9999"]
  }
}

resource "google_compute_firewall" "ssh" {
  name          = "${local.name}-ssh"
  network       = var.network_id
  target_tags   = [local.network_tag]
  source_ranges = ["35.235.240.0/20"] # Identity-Aware Proxy's TCP forwarding

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}
