variable "zone" {
  type        = string
  description = "The zone the executor instances are created in."
}

variable "network_id" {
  type        = string
  description = "The network the executors are attached to (networking module output network_id)."
}

variable "subnet_id" {
  type        = string
  description = "The subnetwork the executors are attached to (networking module output subnet_id)."
}

variable "resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the name of every resource, so several executor deployments can share a project."
}

variable "machine_image" {
  type        = string
  default     = ""
  description = "The boot image of the executors. Empty means the latest stock Debian 13 image (debian-cloud/debian-13); the startup script installs the executor on it."
}

variable "machine_type" {
  type        = string
  default     = "c2-standard-8"
  description = "The machine type of the executors."
}

variable "boot_disk_size" {
  type        = number
  default     = 100
  description = "The size of the executors' pd-ssd boot disk, in GB."
}

variable "preemptible_machines" {
  type        = bool
  default     = false
  description = "Whether the executors run on preemptible VMs. A preempted VM drains for as long as Compute Engine allows (about 30 seconds)."
}

variable "instance_tag" {
  type        = string
  description = "The value of the executor_tag label on every executor, for filtering and monitoring."
}

variable "http_access_cidr_ranges" {
  type        = list(string)
  default     = ["0.0.0.0/0"]
  description = "DEPRECATED and unused: executors serve no HTTP port; kept so existing configurations still apply."
}

variable "sourcegraph_external_url" {
  type        = string
  description = "The URL of the coordinator (or Sourcegraph instance) the executors dequeue from: EXECUTOR_FRONTEND_URL."
}

variable "sourcegraph_executor_proxy_password" {
  type        = string
  sensitive   = true
  description = "The shared secret executors authenticate with (the site config's executors.accessToken): EXECUTOR_FRONTEND_PASSWORD."

  validation {
    condition     = length(regexall("[\r\n]", var.sourcegraph_executor_proxy_password)) == 0
    error_message = "The executor proxy password must be a single line."
  }
}

variable "queue_name" {
  type        = string
  default     = ""
  description = "The single queue the executors dequeue from (EXECUTOR_QUEUE_NAME). Set this or queue_names."
}

variable "queue_names" {
  type        = list(string)
  default     = null
  description = "The queues the executors dequeue from (EXECUTOR_QUEUE_NAMES, sorted and comma-joined). Set this or queue_name."
}

variable "maximum_runtime_per_job" {
  type        = string
  default     = "45m"
  description = "The longest a job may run before it is stopped and reported errored (EXECUTOR_MAXIMUM_RUNTIME_PER_JOB, a Go duration)."
}

variable "maximum_num_jobs" {
  type        = number
  default     = 2
  description = "How many jobs one executor runs at once (EXECUTOR_MAXIMUM_NUM_JOBS)."
}

variable "num_total_jobs" {
  type        = number
  default     = 200
  description = "After this many jobs the executor drains and its VM is replaced (EXECUTOR_NUM_TOTAL_JOBS)."
}

variable "max_active_time" {
  type        = string
  default     = "12h"
  description = "After this long the executor drains and its VM is replaced (EXECUTOR_MAX_ACTIVE_TIME, a Go duration)."
}

variable "job_num_cpus" {
  type        = string
  default     = "4"
  description = "CPUs per job (EXECUTOR_JOB_NUM_CPUS). Empty falls back to firecracker_num_cpus."
}

variable "firecracker_num_cpus" {
  type        = number
  default     = 4
  description = "Legacy name of job_num_cpus, used when job_num_cpus is empty."
}

variable "job_memory" {
  type        = string
  default     = "12GB"
  description = "Memory per job (EXECUTOR_JOB_MEMORY). Empty falls back to firecracker_memory."
}

variable "firecracker_memory" {
  type        = string
  default     = "12GB"
  description = "Legacy name of job_memory, used when job_memory is empty."
}

variable "firecracker_disk_space" {
  type        = string
  default     = "20GB"
  description = "Disk per job, its workspace and writable layer (EXECUTOR_FIRECRACKER_DISK_SPACE)."
}

variable "use_firecracker" {
  type        = bool
  default     = true
  description = "Written as EXECUTOR_USE_FIRECRACKER for compatibility. The sandbox is chosen by runtime, which overrides it."
}

variable "min_replicas" {
  type        = number
  default     = 1
  description = "The fewest executors the autoscaler keeps; 0 lets the group scale to nothing while the queue is empty."
}

variable "max_replicas" {
  type        = number
  default     = 1
  description = "The most executors the autoscaler starts."
}

variable "jobs_per_instance_scaling" {
  type        = number
  default     = 20
  description = "The queue size one executor is meant to absorb: the group is sized to ceil(queue size / this), within min_replicas and max_replicas."
}

variable "metrics_environment_label" {
  type        = string
  description = "The environment label of the queue-size metric; must equal the coordinator's EXECUTOR_METRIC_ENVIRONMENT_LABEL."
}

variable "docker_registry_mirror" {
  type        = string
  default     = ""
  description = "The URL of a pull-through registry mirror (http://<ip>:5000), tried after mirror.gcr.io."
}

variable "docker_registry_mirror_node_exporter_url" {
  type        = string
  default     = ""
  description = "The URL of the mirror's metrics exporter (http://<ip>:9999), written as DOCKER_REGISTRY_NODE_EXPORTER_URL."
}

variable "assign_public_ip" {
  type        = bool
  default     = true
  description = "Whether the executors get a public IP. Without one they need a NAT to reach the coordinator and registries."
}

variable "docker_auth_config" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Registry credentials as a Docker config JSON ({\"auths\": {...}}): EXECUTOR_DOCKER_AUTH_CONFIG."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels added to every executor VM."
}

variable "randomize_resource_names" {
  type        = bool
  default     = false
  description = "Name resources with a random suffix instead of the fixed legacy names, so the module can be used more than once per project."
}

variable "use_local_ssd" {
  type        = bool
  default     = false
  description = "Put the executor's image cache and state (/var/lib/sandfleet/executor) on a 375 GB local NVMe SSD."
}

variable "private_ca_cert_path" {
  type        = string
  default     = ""
  description = "A local file with a PEM CA certificate the executors trust (installed as /etc/ssl/certs/private_ca_cert.pem)."
}

variable "executor_binary_url" {
  type        = string
  description = "Sandfleet addition: the URL of the executor release artifact (built by npm run release) the startup script installs as /usr/local/bin/executor."

  validation {
    condition     = can(regex("^https?://[^\\s]+$", var.executor_binary_url))
    error_message = "The executor_binary_url must be an http or https URL."
  }
}

variable "executor_binary_sha256" {
  type        = string
  description = "Sandfleet addition: the sha256 of the release artifact; the startup script refuses an artifact that does not match."

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.executor_binary_sha256))
    error_message = "The executor_binary_sha256 must be 64 lowercase hex digits."
  }
}

variable "runtime" {
  type        = string
  default     = "gvisor"
  description = "Sandfleet addition: the sandbox every step runs in (EXECUTOR_RUNTIME), prepared by executor install <runtime>: gvisor, oci, bwrap or docker."

  validation {
    condition     = contains(["gvisor", "oci", "bwrap", "docker"], var.runtime)
    error_message = "The runtime must be one of gvisor, oci, bwrap, docker."
  }
}

variable "drain_timeout_seconds" {
  type        = number
  default     = 3600
  description = "Sandfleet addition: how long a stopping executor may wait for its running jobs (systemd's TimeoutStopSec)."
}
