variable "vpc_id" {
  type        = string
  description = "The VPC the mirror runs in."
}

variable "subnet_id" {
  type        = string
  description = "The subnet of the mirror's static network interface."
}

variable "machine_ami" {
  type        = string
  default     = ""
  description = "An AMI ID for the mirror. Empty means the latest stock Debian 13 AMI; the startup script installs Debian's docker-registry."
}

variable "machine_type" {
  type        = string
  default     = "m5n.large"
  description = "The mirror's instance type."
}

variable "ami_version" {
  type        = string
  default     = ""
  description = "Accepted for compatibility and ignored: the mirror boots stock Debian."
}

variable "boot_disk_size" {
  type        = number
  default     = 32
  description = "The mirror's root volume size, in GB."
}

variable "disk_size" {
  type        = number
  default     = 64
  description = "The size of the EBS volume that holds the cached images, in GB. It outlives the instance."
}

variable "disk_iops" {
  type        = number
  default     = 3000
  description = "The data volume's IOPS."
}

variable "disk_throughput" {
  type        = number
  default     = 125
  description = "The data volume's throughput, in MiB/s."
}

variable "static_ip" {
  type        = string
  description = "The mirror's private IP in the subnet; the executors are configured with it."
}

variable "ssh_access_cidr_range" {
  type        = string
  default     = "10.0.0.0/16"
  description = "The range SSH (port 22) is open to."
}

variable "http_access_cidr_range" {
  type        = string
  default     = "10.0.0.0/16"
  description = "The range that may reach the registry (5000) and its metrics exporter (9999)."
}

variable "http_metrics_access_cidr_range" {
  type        = string
  default     = "0.0.0.0/0"
  description = "DEPRECATED and unused: metrics are served to http_access_cidr_range."
}

variable "instance_tag_prefix" {
  type        = string
  description = "Prefix of the mirror's executor_tag tag (<prefix>-docker-mirror)."
}

variable "assign_public_ip" {
  type        = bool
  default     = true
  description = "Give the mirror an Elastic IP. Without one it needs the NAT to reach Docker Hub."
}

variable "docker_mirror_access_security_group_id" {
  type        = string
  default     = ""
  description = "A security group for the mirror; empty creates one (SSH from ssh_access_cidr_range, 5000 and 9999 from http_access_cidr_range)."
}

variable "resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the name of every resource."
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
