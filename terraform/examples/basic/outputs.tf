output "webhook_url" {
  description = "The Payload URL to give GitHub."
  value       = module.gma.webhook_url
}

output "service_url" {
  description = "The Cloud Run URL of gma serve."
  value       = module.gma.service_url
}

output "load_balancer_ip" {
  description = "Point the custom domain's A record here (null without one)."
  value       = module.gma.load_balancer_ip
}

output "secrets" {
  description = "Secrets to fill out of band (docs/deploy-gcp.md)."
  value       = module.gma.secrets
}

output "dataset" {
  description = "The BigQuery dataset."
  value       = module.gma.dataset
}

output "jobs" {
  description = "The Cloud Run jobs."
  value       = module.gma.jobs
}
