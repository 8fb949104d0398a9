resource "random_id" "suffix" {
  count       = var.randomize_resource_names ? 1 : 0
  byte_length = 2
}

locals {
  suffix  = var.randomize_resource_names ? "-${random_id.suffix[0].hex}" : ""
  name    = "${var.resource_prefix}sourcegraph-executors${local.suffix}"
  ip_cidr = "10.0.1.0/24"
}

resource "google_compute_network" "default" {
  name                    = local.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "default" {
  name          = "${local.name}-subnet"
  network       = google_compute_network.default.id
  region        = var.region
  ip_cidr_range = local.ip_cidr
}

resource "google_compute_router" "default" {
  count   = var.nat ? 1 : 0
  name    = "${local.name}-nat-router"
  network = google_compute_network.default.id
  region  = var.region
}

resource "google_compute_address" "nat" {
  count  = var.nat ? 1 : 0
  name   = "${local.name}-nat-ip"
  region = var.region
}

resource "google_compute_router_nat" "default" {
  count                              = var.nat ? 1 : 0
  name                               = "${local.name}-nat"
  router                             = google_compute_router.default[0].name
  region                             = var.region
  nat_ip_allocate_option             = "MANUAL_ONLY"
  nat_ips                            = google_compute_address.nat[*].self_link
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
  min_ports_per_vm                   = var.nat_min_ports_per_vm

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
