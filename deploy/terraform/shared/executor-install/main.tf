# Renders the part of an executor's startup script both clouds share: install the release
# artifact, prepare the runtime, write executor.env, start the unit. No resources.

locals {
  queue_names = var.queue_names == null ? [] : sort(var.queue_names)
  # The metric's queueName label, computed as the coordinator computes it: the queue, or the
  # sorted queues joined by "_".
  queue_label = var.queue_name != "" ? var.queue_name : join("_", local.queue_names)

  private_ca_cert_file = "/etc/ssl/certs/private_ca_cert.pem"

  env = {
    EXECUTOR_QUEUE_NAME                 = var.queue_name
    EXECUTOR_QUEUE_NAMES                = join(",", local.queue_names)
    EXECUTOR_MAXIMUM_RUNTIME_PER_JOB    = var.maximum_runtime_per_job
    EXECUTOR_MAXIMUM_NUM_JOBS           = tostring(var.maximum_num_jobs)
    EXECUTOR_JOB_NUM_CPUS               = var.job_num_cpus
    EXECUTOR_JOB_MEMORY                 = var.job_memory
    EXECUTOR_FIRECRACKER_DISK_SPACE     = var.firecracker_disk_space
    EXECUTOR_FRONTEND_URL               = var.frontend_url
    EXECUTOR_FRONTEND_PASSWORD          = var.frontend_password
    EXECUTOR_NUM_TOTAL_JOBS             = tostring(var.num_total_jobs)
    EXECUTOR_MAX_ACTIVE_TIME            = var.max_active_time
    EXECUTOR_USE_FIRECRACKER            = tostring(var.use_firecracker)
    EXECUTOR_RUNTIME                    = var.runtime
    EXECUTOR_DOCKER_REGISTRY_MIRROR_URL = join(",", compact(var.docker_registry_mirror_urls))
    # JSON needs no raw line breaks; an env file line must not have any.
    EXECUTOR_DOCKER_AUTH_CONFIG       = replace(var.docker_auth_config, "/[\r\n]/", "")
    DOCKER_REGISTRY_NODE_EXPORTER_URL = var.docker_registry_mirror_node_exporter_url
    NODE_EXTRA_CA_CERTS               = var.private_ca_cert_path != "" ? local.private_ca_cert_file : ""
  }

  # systemd EnvironmentFile syntax: double-quoted values with \, ", $ and ` escaped. Empty
  # values are left out, so the executor's own defaults apply.
  env_file = join("", [
    for name, value in local.env :
    format("%s=\"%s\"\n", name, replace(replace(replace(replace(value, "\\", "\\\\"), "\"", "\\\""), "$", "\\$"), "`", "\\`"))
    if value != ""
  ])

  script = templatefile("${path.module}/install-executor.sh.tpl", {
    executor_binary_url_b64 = base64encode(var.executor_binary_url)
    executor_binary_sha256  = var.executor_binary_sha256
    runtime                 = var.runtime
    drain_timeout_seconds   = tostring(var.drain_timeout_seconds)
    env_file_b64            = base64encode(local.env_file)
    private_ca_cert_b64     = var.private_ca_cert_path != "" ? base64encode(file(var.private_ca_cert_path)) : ""
    recycle_script_b64      = base64encode(file("${path.module}/executor-recycle.sh"))
  })
}
