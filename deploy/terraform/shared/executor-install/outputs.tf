output "script" {
  value       = local.script
  sensitive   = true
  description = "Bash functions ending in install_executor, to embed in a startup script; holds the shared secret."
}

output "queue_label" {
  value       = local.queue_label
  description = "The queueName label of the queue-size metric these executors scale on."
}
