variable "availability_zone" {
  type        = string
  description = "The availability zone of the executors and the registry mirror."
}

variable "docker_mirror_machine_ami" {
  type        = string
  default     = ""
  description = "An AMI ID for the mirror. Empty means the latest stock Debian 13 AMI."
}

variable "docker_mirror_machine_type" {
  type        = string
  default     = "m5.large"
  description = "The mirror's instance type."
}

variable "docker_mirror_boot_disk_size" {
  type        = number
  default     = 64
  description = "The mirror's root volume size, in GB."
}

variable "docker_mirror_disk_iops" {
  type        = number
  default     = 3000
  description = "The IOPS of the mirror's data volume."
}

variable "docker_mirror_static_ip" {
  type        = string
  default     = "10.0.1.4"
  description = "The mirror's private IP in the executors' subnet."
}

variable "docker_mirror_ssh_access_cidr_range" {
  type        = string
  default     = "0.0.0.0/0"
  description = "The range SSH to the mirror is open to."
}

variable "docker_mirror_http_access_cidr_range" {
  type        = string
  default     = "10.0.0.0/16"
  description = "DEPRECATED and unused: the mirror is reachable from the executors' subnet."
}

variable "executor_resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the name of every resource."
}

variable "executor_machine_image" {
  type        = string
  default     = ""
  description = "An AMI ID for the executors. Empty means the latest stock Debian 13 AMI; the startup script installs the executor on it."
}

variable "executor_machine_type" {
  type        = string
  default     = "c5n.metal"
  description = "The executors' instance type. Sandfleet's runtimes need no KVM, so a non-metal type works too."
}

variable "executor_boot_disk_size" {
  type        = number
  default     = 100
  description = "The executors' root volume size, in GB."
}

variable "executor_boot_disk_iops" {
  type        = number
  default     = 3000
  description = "The executors' root volume IOPS."
}

variable "executor_preemptible_machines" {
  type        = bool
  default     = false
  description = "Run the executors as one-time spot instances."
}

variable "executor_instance_tag" {
  type        = string
  description = "The executor_tag tag on every executor, for filtering and monitoring."
}

variable "executor_ssh_access_cidr_range" {
  type        = string
  default     = "0.0.0.0/0"
  description = "The range SSH to the executors is open to."
}

variable "executor_http_access_cidr_range" {
  type        = string
  default     = "0.0.0.0/0"
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
  default     = "30m"
  description = "The longest a job may run (EXECUTOR_MAXIMUM_RUNTIME_PER_JOB)."
}

variable "executor_maximum_num_jobs" {
  type        = number
  default     = 18
  description = "Jobs one executor runs at once (EXECUTOR_MAXIMUM_NUM_JOBS)."
}

variable "executor_num_total_jobs" {
  type        = number
  default     = 1800
  description = "Jobs after which an executor's instance is replaced (EXECUTOR_NUM_TOTAL_JOBS)."
}

variable "executor_max_active_time" {
  type        = string
  default     = "2h"
  description = "Time after which an executor's instance is replaced (EXECUTOR_MAX_ACTIVE_TIME)."
}

variable "executor_firecracker_num_cpus" {
  type        = number
  default     = 4
  description = "Legacy name of executor_job_num_cpus."
}

variable "executor_job_num_cpus" {
  type        = string
  default     = "4"
  description = "CPUs per job (EXECUTOR_JOB_NUM_CPUS); empty falls back to executor_firecracker_num_cpus."
}

variable "executor_firecracker_memory" {
  type        = string
  default     = "12GB"
  description = "Legacy name of executor_job_memory."
}

variable "executor_job_memory" {
  type        = string
  default     = "12GB"
  description = "Memory per job (EXECUTOR_JOB_MEMORY); empty falls back to executor_firecracker_memory."
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
  description = "The most executors. The scaling alarms exist only when it differs from executor_min_replicas."
}

variable "executor_jobs_per_instance_scaling" {
  type        = number
  default     = 360
  description = "The queue size per executor the alarms aim for: ceil(queue size / this) executors."
}

variable "executor_metrics_environment_label" {
  type        = string
  description = "The queue-size metric's environment dimension; must equal the coordinator's EXECUTOR_METRIC_ENVIRONMENT_LABEL."
}

variable "private_networking" {
  type        = bool
  default     = false
  description = "Give the executors and the mirror no public IP; they sit in a private subnet behind a NAT gateway."
}

variable "security_group_id" {
  type        = string
  default     = ""
  description = "A security group for the mirror and the executors; when set, the default groups are not created."
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

variable "permissions_boundary_arn" {
  type        = string
  default     = ""
  description = "An IAM permissions boundary for the roles this module creates."
}

variable "ami_version" {
  type        = string
  default     = ""
  description = "Accepted for compatibility and ignored: executors and mirror boot stock Debian."
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
  description = "Sandfleet addition: the artifact's sha256; an instance refuses an artifact that does not match."
}

variable "executor_runtime" {
  type        = string
  default     = "gvisor"
  description = "Sandfleet addition: the sandbox steps run in (EXECUTOR_RUNTIME): gvisor, oci, bwrap or docker."
}

variable "executor_drain_timeout_seconds" {
  type        = number
  default     = 3600
  description = "Sandfleet addition: how long a terminating executor may wait for its running jobs (at most 7200)."
}
