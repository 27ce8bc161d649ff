output "worker_pool_name" {
  description = "Name of the Cloud Run worker pool running `prowtrace pull`."
  value       = module.prowtrace.service_name
}

output "subscription_id" {
  description = "Subscription the worker pool pulls."
  value       = module.prowtrace.subscription_id
}

output "dead_letter_subscription_id" {
  description = "Where undeliverable messages wait."
  value       = module.prowtrace.dead_letter_subscription_id
}

output "runtime_service_account" {
  description = "Identity prowtrace runs as."
  value       = module.prowtrace.runtime_service_account
}
