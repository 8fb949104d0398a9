variable "zone" {
  type        = string
  description = "The zone the mirror VM and its data disk are created in."
}

variable "network_id" {
  type        = string
  description = "The network the mirror is attached to (networking module output network_id)."
}

variable "subnet_id" {
  type        = string
  description = "The subnetwork the mirror's static internal address is taken from."
}

variable "machine_image" {
  type        = string
  default     = ""
  description = "The boot image of the mirror. Empty means the latest stock Debian 13 image; the startup script installs Debian's docker-registry."
}

variable "machine_type" {
  type        = string
  default     = "n2-standard-2"
  description = "The machine type of the mirror."
}

variable "boot_disk_size" {
  type        = number
  default     = 10
  description = "The size of the mirror's boot disk, in GB."
}

variable "disk_size" {
  type        = number
  default     = 64
  description = "The size of the persistent disk that holds the cached images, in GB. It outlives the VM."
}

variable "http_access_cidr_ranges" {
  type        = list(string)
  default     = ["10.0.0.0/16"]
  description = "The ranges that may reach the registry (5000) and its metrics exporter (9999)."
}

variable "http_metrics_access_cidr_ranges" {
  type        = list(string)
  default     = []
  description = "DEPRECATED and unused: metrics are served to http_access_cidr_ranges."
}

variable "instance_tag_prefix" {
  type        = string
  description = "Prefix of the mirror's executor_tag label (<prefix>-docker-mirror)."
}

variable "assign_public_ip" {
  type        = bool
  default     = true
  description = "Whether the mirror gets a public IP. Without one it needs a NAT to reach Docker Hub."
}

variable "resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the name of every resource."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels added to the mirror VM and its disk."
}

variable "randomize_resource_names" {
  type        = bool
  default     = false
  description = "Name resources with a random suffix instead of the fixed legacy names."
}

variable "use_local_ssd" {
  type        = bool
  default     = false
  description = "Keep the cache on a local NVMe SSD instead of a persistent disk; it is lost when the VM is replaced."
}
