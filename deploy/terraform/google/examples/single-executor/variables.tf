variable "executor_proxy_password" {
  type        = string
  sensitive   = true
  description = "The coordinator's executors.accessToken."
}

variable "executor_binary_url" {
  type        = string
  description = "The URL of the executor release artifact."
}

variable "executor_binary_sha256" {
  type        = string
  description = "The sha256 of the executor release artifact."
}
