variable "resource_prefix" {
  type        = string
  default     = ""
  description = "A prefix added to the service account's and the role's names."
}
