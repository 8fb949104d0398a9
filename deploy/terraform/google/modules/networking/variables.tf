variable "region" {
  type        = string
  description = "The region of the subnetwork (and of the NAT router)."
}

variable "nat" {
  type        = bool
  default     = false
  description = "Create a Cloud NAT, so instances without a public IP reach the coordinator and registries."
}

variable "nat_min_ports_per_vm" {
  type        = number
  default     = 1024
  description = "The NAT ports reserved for each VM."
}

variable "resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the name of every resource."
}

variable "randomize_resource_names" {
  type        = bool
  default     = false
  description = "Name resources with a random suffix instead of the fixed legacy names."
}
