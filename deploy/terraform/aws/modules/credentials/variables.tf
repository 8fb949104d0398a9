variable "resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the IAM user's name."
}

variable "permissions_boundary_arn" {
  type        = string
  default     = ""
  description = "An IAM permissions boundary for the user."
}
