variable "availability_zone" {
  type        = string
  description = "The availability zone of the subnets."
}

variable "nat" {
  type        = bool
  default     = false
  description = "Put the executors in a private subnet behind a NAT gateway, so they need no public IP."
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
