variable "region" {
  type        = string
  description = "The region of the network."
}

variable "zone" {
  type        = string
  description = "The zone of the executors and the registry mirror."
}

variable "docker_mirror_machine_image" {
  type        = string
  default     = ""
  description = "The mirror's boot image. Empty means the latest stock Debian 13 image."
}

variable "docker_mirror_machine_type" {
  type        = string
  default     = "n2-standard-2"
  description = "The mirror's machine type."
}

variable "docker_mirror_boot_disk_size" {
  type        = number
  default     = 10
  description = "The mirror's boot disk size, in GB."
}

variable "docker_mirror_use_local_ssd" {
  type        = bool
  default     = false
  description = "Keep the mirror's cache on a local NVMe SSD instead of a persistent disk; the cache is lost when the VM is replaced."
}

variable "docker_mirror_http_access_cidr_ranges" {
  type        = list(string)
  default     = ["10.0.0.0/16"]
  description = "DEPRECATED and unused: the mirror is reachable from the executors' subnetwork."
}

variable "executor_resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the name of every resource."
}

variable "executor_machine_image" {
  type        = string
  default     = ""
  description = "The executors' boot image. Empty means the latest stock Debian 13 image; the startup script installs the executor on it."
}

variable "executor_machine_type" {
  type        = string
  default     = "c2-standard-8"
  description = "The executors' machine type."
}

variable "executor_use_local_ssd" {
  type        = bool
  default     = false
  description = "Put the executor's image cache and state on a 375 GB local NVMe SSD; the boot disk then defaults to 10 GB."
}

variable "executor_boot_disk_size" {
  type        = number
  default     = 100
  description = "The executors' pd-ssd boot disk size, in GB (10 with executor_use_local_ssd unless set)."
}

variable "executor_preemptible_machines" {
  type        = bool
  default     = false
  description = "Run the executors on preemptible VMs."
}

variable "executor_instance_tag" {
  type        = string
  description = "The executor_tag label on every executor, for filtering and monitoring."
}

variable "executor_http_access_cidr_ranges" {
  type        = list(string)
  default     = ["0.0.0.0/0"]
  description = "DEPRECATED and unused: executors serve no HTTP port."
}

variable "executor_sourcegraph_external_url" {
  type        = string
  description = "The coordinator's (or Sourcegraph instance's) URL: EXECUTOR_FRONTEND_URL."
}

variable "executor_sourcegraph_executor_proxy_password" {
  type        = string
  sensitive   = true
  description = "The shared secret (the site config's executors.accessToken): EXECUTOR_FRONTEND_PASSWORD."
}

variable "executor_queue_name" {
  type        = string
  default     = ""
  description = "The single queue to dequeue from (EXECUTOR_QUEUE_NAME). Set this or executor_queue_names."
}

variable "executor_queue_names" {
  type        = list(string)
  default     = null
  description = "The queues to dequeue from (EXECUTOR_QUEUE_NAMES). Set this or executor_queue_name."
}

variable "executor_maximum_runtime_per_job" {
  type        = string
  default     = "45m"
  description = "The longest a job may run (EXECUTOR_MAXIMUM_RUNTIME_PER_JOB)."
}

variable "executor_maximum_num_jobs" {
  type        = number
  default     = 2
  description = "Jobs one executor runs at once (EXECUTOR_MAXIMUM_NUM_JOBS)."
}

variable "executor_num_total_jobs" {
  type        = number
  default     = 200
  description = "Jobs after which an executor's VM is replaced (EXECUTOR_NUM_TOTAL_JOBS)."
}

variable "executor_max_active_time" {
  type        = string
  default     = "12h"
  description = "Time after which an executor's VM is replaced (EXECUTOR_MAX_ACTIVE_TIME)."
}

variable "executor_job_num_cpus" {
  type        = string
  default     = "4"
  description = "CPUs per job (EXECUTOR_JOB_NUM_CPUS); empty falls back to executor_firecracker_num_cpus."
}

variable "executor_firecracker_num_cpus" {
  type        = number
  default     = 4
  description = "Legacy name of executor_job_num_cpus."
}

variable "executor_job_memory" {
  type        = string
  default     = "12GB"
  description = "Memory per job (EXECUTOR_JOB_MEMORY); empty falls back to executor_firecracker_memory."
}

variable "executor_firecracker_memory" {
  type        = string
  default     = "12GB"
  description = "Legacy name of executor_job_memory."
}

variable "executor_firecracker_disk_space" {
  type        = string
  default     = "20GB"
  description = "Disk per job (EXECUTOR_FIRECRACKER_DISK_SPACE)."
}

variable "executor_use_firecracker" {
  type        = bool
  default     = true
  description = "Written as EXECUTOR_USE_FIRECRACKER for compatibility; the sandbox is executor_runtime, which overrides it."
}

variable "executor_min_replicas" {
  type        = number
  default     = 1
  description = "The fewest executors; 0 lets the group scale to nothing while the queue is empty."
}

variable "executor_max_replicas" {
  type        = number
  default     = 1
  description = "The most executors."
}

variable "executor_jobs_per_instance_scaling" {
  type        = number
  default     = 20
  description = "The queue size per executor the autoscaler aims for: ceil(queue size / this) executors."
}

variable "executor_metrics_environment_label" {
  type        = string
  description = "The queue-size metric's environment label; must equal the coordinator's EXECUTOR_METRIC_ENVIRONMENT_LABEL."
}

variable "private_networking" {
  type        = bool
  default     = false
  description = "Give the executors and the mirror no public IP; the network gets a Cloud NAT."
}

variable "executor_docker_auth_config" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Registry credentials as Docker config JSON: EXECUTOR_DOCKER_AUTH_CONFIG."
}

variable "randomize_resource_names" {
  type        = bool
  default     = false
  description = "Random-suffixed resource names instead of the fixed legacy names."
}

variable "private_ca_cert_path" {
  type        = string
  default     = ""
  description = "A local PEM file whose CA certificate the executors trust."
}

variable "executor_binary_url" {
  type        = string
  description = "Sandfleet addition: the URL of the executor release artifact (npm run release) the executors install."
}

variable "executor_binary_sha256" {
  type        = string
  description = "Sandfleet addition: the artifact's sha256; a VM refuses an artifact that does not match."
}

variable "executor_runtime" {
  type        = string
  default     = "gvisor"
  description = "Sandfleet addition: the sandbox steps run in (EXECUTOR_RUNTIME): gvisor, oci, bwrap or docker."
}

variable "executor_drain_timeout_seconds" {
  type        = number
  default     = 3600
  description = "Sandfleet addition: how long a stopping executor may wait for its running jobs."
}
