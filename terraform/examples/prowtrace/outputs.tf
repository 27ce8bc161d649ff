output "service_url" {
  description = "Push endpoint and OIDC audience (push mode)."
  value       = module.prowtrace.service_url
}

output "subscription_id" {
  description = "Subscription on the Prow topic."
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

output "trace_url_template" {
  description = "Cloud Trace link for a job; replace TRACE_ID."
  value       = module.prowtrace.trace_url_template
}
