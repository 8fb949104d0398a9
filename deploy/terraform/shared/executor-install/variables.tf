variable "frontend_url" {
  type        = string
  description = "EXECUTOR_FRONTEND_URL: the coordinator (or Sourcegraph instance)."
}

variable "frontend_password" {
  type        = string
  sensitive   = true
  description = "EXECUTOR_FRONTEND_PASSWORD: the shared secret (executors.accessToken)."
}

variable "queue_name" {
  type        = string
  description = "EXECUTOR_QUEUE_NAME; empty when queue_names is set."
}

variable "queue_names" {
  type        = list(string)
  description = "EXECUTOR_QUEUE_NAMES (sorted, comma-joined); null when queue_name is set."
}

variable "maximum_runtime_per_job" {
  type        = string
  description = "EXECUTOR_MAXIMUM_RUNTIME_PER_JOB."
}

variable "maximum_num_jobs" {
  type        = number
  description = "EXECUTOR_MAXIMUM_NUM_JOBS."
}

variable "num_total_jobs" {
  type        = number
  description = "EXECUTOR_NUM_TOTAL_JOBS."
}

variable "max_active_time" {
  type        = string
  description = "EXECUTOR_MAX_ACTIVE_TIME."
}

variable "job_num_cpus" {
  type        = string
  description = "EXECUTOR_JOB_NUM_CPUS."
}

variable "job_memory" {
  type        = string
  description = "EXECUTOR_JOB_MEMORY."
}

variable "firecracker_disk_space" {
  type        = string
  description = "EXECUTOR_FIRECRACKER_DISK_SPACE."
}

variable "use_firecracker" {
  type        = bool
  description = "EXECUTOR_USE_FIRECRACKER (overridden by the explicit EXECUTOR_RUNTIME)."
}

variable "docker_registry_mirror_urls" {
  type        = list(string)
  description = "EXECUTOR_DOCKER_REGISTRY_MIRROR_URL, in the order they are tried; empty entries are dropped."
}

variable "docker_registry_mirror_node_exporter_url" {
  type        = string
  description = "DOCKER_REGISTRY_NODE_EXPORTER_URL; empty leaves it out."
}

variable "docker_auth_config" {
  type        = string
  sensitive   = true
  description = "EXECUTOR_DOCKER_AUTH_CONFIG; empty leaves it out."
}

variable "private_ca_cert_path" {
  type        = string
  description = "A local PEM file the executors trust; empty for none."
}

variable "executor_binary_url" {
  type        = string
  description = "The URL of the executor release artifact."
}

variable "executor_binary_sha256" {
  type        = string
  description = "The sha256 the artifact must have."
}

variable "runtime" {
  type        = string
  description = "EXECUTOR_RUNTIME, and the argument of executor install."
}

variable "drain_timeout_seconds" {
  type        = number
  description = "TimeoutStopSec of executor.service: how long a drain may take."
}
