# A service account for the coordinator, allowed only to write time series: it publishes the
# queue-size metric the executors' autoscaler follows.

data "google_project" "current" {}

locals {
  # Service account ids are 6 to 30 characters; role ids allow no dashes.
  account_id = substr("${var.resource_prefix}-sg-metric-writer", 0, 30)
  role_id    = "${replace(var.resource_prefix, "-", "_")}MetricWriter"
}

resource "google_service_account" "metric_writer" {
  account_id   = trimsuffix(trimprefix(local.account_id, "-"), "-")
  display_name = "Sandfleet executors' metric writer"
}

resource "google_project_iam_custom_role" "metric_writer" {
  role_id     = local.role_id
  title       = "Sandfleet executors' metric writer"
  permissions = ["monitoring.timeSeries.create"]
}

resource "google_project_iam_member" "metric_writer" {
  project = data.google_project.current.project_id
  role    = google_project_iam_custom_role.metric_writer.id
  member  = "serviceAccount:${google_service_account.metric_writer.email}"
}

resource "google_service_account_key" "metric_writer" {
  service_account_id = google_service_account.metric_writer.name
}
