variable "vpc_id" {
  type        = string
  description = "The VPC the executors run in (networking module output vpc_id)."
}

variable "subnet_id" {
  type        = string
  description = "The subnet the executors are launched in (networking module output subnet_id)."
}

variable "resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the name of every resource, so several executor deployments can share an account."
}

variable "machine_image" {
  type        = string
  default     = ""
  description = "An AMI ID for the executors. Empty means the latest stock Debian 13 AMI; the startup script installs the executor on it."
}

variable "machine_type" {
  type        = string
  default     = "c5n.metal"
  description = "The executors' instance type. Sandfleet's runtimes need no KVM, so a non-metal type works too."
}

variable "ami_version" {
  type        = string
  default     = ""
  description = "Accepted for compatibility and ignored: the executors boot stock Debian, whatever Sourcegraph AMI version is named."
}

variable "boot_disk_size" {
  type        = number
  default     = 500
  description = "The executors' gp3 root volume size, in GB."
}

variable "boot_disk_iops" {
  type        = number
  default     = 3000
  description = "The executors' root volume IOPS."
}

variable "boot_disk_throughput" {
  type        = number
  default     = 125
  description = "The executors' root volume throughput, in MiB/s."
}

variable "preemptible_machines" {
  type        = bool
  default     = false
  description = "Run the executors as one-time spot instances. A reclaimed spot instance drains for the two minutes AWS allows."
}

variable "instance_tag" {
  type        = string
  description = "The executor_tag tag on every executor, for filtering and monitoring."
}

variable "ssh_access_cidr_range" {
  type        = string
  default     = "10.0.0.0/16"
  description = "The range SSH (port 22) is open to."
}

variable "http_access_cidr_range" {
  type        = string
  default     = "0.0.0.0/0"
  description = "DEPRECATED and unused: executors serve no HTTP port."
}

variable "sourcegraph_external_url" {
  type        = string
  description = "The coordinator's (or Sourcegraph instance's) URL: EXECUTOR_FRONTEND_URL."
}

variable "sourcegraph_executor_proxy_password" {
  type        = string
  sensitive   = true
  description = "The shared secret (the site config's executors.accessToken): EXECUTOR_FRONTEND_PASSWORD."

  validation {
    condition     = length(regexall("[\r\n]", var.sourcegraph_executor_proxy_password)) == 0
    error_message = "The executor proxy password must be a single line."
  }
}

variable "queue_name" {
  type        = string
  default     = ""
  description = "The single queue to dequeue from (EXECUTOR_QUEUE_NAME). Set this or queue_names."
}

variable "queue_names" {
  type        = list(string)
  default     = null
  description = "The queues to dequeue from (EXECUTOR_QUEUE_NAMES, sorted and comma-joined). Set this or queue_name."
}

variable "maximum_runtime_per_job" {
  type        = string
  default     = "30m"
  description = "The longest a job may run (EXECUTOR_MAXIMUM_RUNTIME_PER_JOB, a Go duration)."
}

variable "maximum_num_jobs" {
  type        = number
  default     = 18
  description = "Jobs one executor runs at once (EXECUTOR_MAXIMUM_NUM_JOBS)."
}

variable "num_total_jobs" {
  type        = number
  default     = 1800
  description = "Jobs after which the executor drains and its instance is replaced (EXECUTOR_NUM_TOTAL_JOBS)."
}

variable "max_active_time" {
  type        = string
  default     = "2h"
  description = "Time after which the executor drains and its instance is replaced (EXECUTOR_MAX_ACTIVE_TIME)."
}

variable "firecracker_num_cpus" {
  type        = number
  default     = 4
  description = "Legacy name of job_num_cpus, used when job_num_cpus is empty."
}

variable "job_num_cpus" {
  type        = string
  default     = "4"
  description = "CPUs per job (EXECUTOR_JOB_NUM_CPUS)."
}

variable "firecracker_memory" {
  type        = string
  default     = "12GB"
  description = "Legacy name of job_memory, used when job_memory is empty."
}

variable "job_memory" {
  type        = string
  default     = "12GB"
  description = "Memory per job (EXECUTOR_JOB_MEMORY)."
}

variable "firecracker_disk_space" {
  type        = string
  default     = "20GB"
  description = "Disk per job (EXECUTOR_FIRECRACKER_DISK_SPACE)."
}

variable "use_firecracker" {
  type        = bool
  default     = true
  description = "Written as EXECUTOR_USE_FIRECRACKER for compatibility; the sandbox is runtime, which overrides it."
}

variable "min_replicas" {
  type        = number
  default     = 1
  description = "The fewest executors; 0 lets the group scale to nothing while the queue is empty."
}

variable "max_replicas" {
  type        = number
  default     = 1
  description = "The most executors. The scaling alarms and policies exist only when it differs from min_replicas."
}

variable "jobs_per_instance_scaling" {
  type        = number
  default     = 360
  description = "The queue size per executor the alarms aim for: ceil(queue size / this) executors."
}

variable "metrics_environment_label" {
  type        = string
  description = "The queue-size metric's environment dimension; must equal the coordinator's EXECUTOR_METRIC_ENVIRONMENT_LABEL."
}

variable "docker_registry_mirror" {
  type        = string
  default     = ""
  description = "The URL of the pull-through registry mirror (http://<ip>:5000): EXECUTOR_DOCKER_REGISTRY_MIRROR_URL."
}

variable "docker_registry_mirror_node_exporter_url" {
  type        = string
  default     = ""
  description = "The URL of the mirror's metrics exporter (http://<ip>:9999): DOCKER_REGISTRY_NODE_EXPORTER_URL."
}

variable "assign_public_ip" {
  type        = bool
  default     = true
  description = "Whether the executors get a public IP. Without one they need the NAT."
}

variable "metrics_access_security_group_id" {
  type        = string
  default     = ""
  description = "A security group for the executors; empty creates one that allows SSH from ssh_access_cidr_range."
}

variable "docker_auth_config" {
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

variable "permissions_boundary_arn" {
  type        = string
  default     = ""
  description = "An IAM permissions boundary for the role this module creates."
}

variable "private_ca_cert_path" {
  type        = string
  default     = ""
  description = "A local PEM file whose CA certificate the executors trust."
}

variable "executor_binary_url" {
  type        = string
  description = "Sandfleet addition: the URL of the executor release artifact (npm run release) the startup script installs as /usr/local/bin/executor."

  validation {
    condition     = can(regex("^https?://[^\\s]+$", var.executor_binary_url))
    error_message = "The executor_binary_url must be an http or https URL."
  }
}

variable "executor_binary_sha256" {
  type        = string
  description = "Sandfleet addition: the artifact's sha256; an instance refuses an artifact that does not match."

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
  description = "Sandfleet addition: how long a terminating executor may wait for its running jobs (TimeoutStopSec and the lifecycle hook's timeout, at most 7200)."

  validation {
    condition     = var.drain_timeout_seconds >= 30 && var.drain_timeout_seconds <= 7200
    error_message = "The drain_timeout_seconds must be between 30 and 7200 (the lifecycle hook's limit)."
  }
}
