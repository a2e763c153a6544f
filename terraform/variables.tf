# Inputs of the gma module. Only project_id, image and github_app_id are required; every other
# input has a default that suits a first deployment. See docs/deploy-gcp.md.

# --- Project and naming -----------------------------------------------------------------------

variable "project_id" {
  description = "The Google Cloud project everything is created in (BigQuery, GCS, Cloud Run, Secret Manager)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6 to 30 lowercase letters, digits and hyphens), not its name or number."
  }
}

variable "region" {
  description = "The region of the Cloud Run service and jobs (and of Cloud Scheduler unless scheduler_region is set)."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "prefix" {
  description = "Prefix of every resource name (services, jobs, service accounts, secrets, buckets)."
  type        = string
  default     = "gma"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2 to 20 lowercase letters, digits and hyphens, starting with a letter (service account ids are at most 30 characters)."
  }
}

variable "image" {
  description = "The gma container image (built from the repository's Dockerfile), e.g. us-docker.pkg.dev/my-project/gma/gma:0.1.0. Pin a tag or digest: a new value deploys a new revision."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0 && !can(regex("\\s", var.image))
    error_message = "image must be a container image reference without spaces."
  }
}

variable "enable_apis" {
  description = "Enable the Google Cloud APIs the module uses (run, bigquery, storage, secretmanager, cloudscheduler, iam, and compute when custom_domain is set). Set false when the project's APIs are managed elsewhere."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the Cloud Run service and jobs from `terraform destroy`. (Tables and buckets are never deleted by this module: tables are created by DDL jobs, buckets refuse to be destroyed while they hold objects.)"
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "log_level" {
  description = "gma's log filter (GMA_LOG), as tracing's EnvFilter reads it: error, warn, info, debug, or per crate like info,gma_ingest=debug."
  type        = string
  default     = "info"

  validation {
    condition     = can(regex("^[A-Za-z0-9_=,:.-]+$", var.log_level))
    error_message = "log_level must be a tracing filter such as info or info,gma_retry=debug."
  }
}

# --- BigQuery ---------------------------------------------------------------------------------

variable "dataset_id" {
  description = "The BigQuery dataset of gma's tables and views, created by the module."
  type        = string
  default     = "gma"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.dataset_id)) && length(var.dataset_id) <= 1024
    error_message = "dataset_id must be letters, digits and underscores."
  }
}

variable "dataset_location" {
  description = "Where the dataset lives (US, EU, or a region). Every job gma runs uses it too."
  type        = string
  default     = "US"
}

variable "table_names" {
  description = "Names of gma's tables, for a deployment that keeps GMA's names (e.g. leech_status = \"artifacts_status\"). The same names are created and handed to the jobs, so the two cannot disagree. The views read `events` through this name; other views assume the defaults."
  type = object({
    events         = optional(string, "events")
    checkpoint     = optional(string, "checkpoint")
    failure_events = optional(string, "failure_events")
    leech_status   = optional(string, "leech_status")
    workflow_logs  = optional(string, "workflow_logs")
  })
  default = {}

  validation {
    condition     = alltrue([for name in values(var.table_names) : can(regex("^[A-Za-z0-9_]+$", name)) && length(name) <= 1024])
    error_message = "Every table name must be letters, digits and underscores."
  }
}

variable "dataset_readers" {
  description = "Members who may read the dataset's tables and views (BigQuery Data Viewer on the dataset), e.g. the people or group behind a Looker Studio report: [\"group:analysts@example.com\"]. To run queries they also need BigQuery Job User on some project."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.dataset_readers : can(regex("^(user|group|serviceAccount|domain):.+$", member))])
    error_message = "dataset_readers entries must be IAM members: user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN."
  }
}

variable "incident_labels" {
  description = "Issue labels that mark an incident, for the DORA views (compared without regard to case)."
  type        = list(string)
  default     = ["incident"]

  validation {
    condition     = length(var.incident_labels) > 0 && alltrue([for label in var.incident_labels : length(trimspace(label)) > 0 && !can(regex("['\"\\\\\n\r]", label))])
    error_message = "incident_labels must be a non-empty list of non-empty labels without quotes, backslashes or line breaks (they are written into the views' SQL)."
  }
}

variable "production_environments" {
  description = "Deployment environments that count as production, for the DORA views (compared without regard to case)."
  type        = list(string)
  default     = ["production", "prod"]

  validation {
    condition     = length(var.production_environments) > 0 && alltrue([for env in var.production_environments : length(trimspace(env)) > 0 && !can(regex("['\"\\\\\n\r]", env))])
    error_message = "production_environments must be a non-empty list of non-empty names without quotes, backslashes or line breaks (they are written into the views' SQL)."
  }
}

# --- Cloud Storage ----------------------------------------------------------------------------

variable "bucket_location" {
  description = "Location of the buckets (US, EU, or a region)."
  type        = string
  default     = "US"
}

variable "logs_bucket_name" {
  description = "Bucket of the archived Actions logs (gma leech). Default: PROJECT-PREFIX-logs."
  type        = string
  default     = null
}

variable "lock_bucket_name" {
  description = "Bucket of the retry job's lock object. Default: PROJECT-PREFIX-lock."
  type        = string
  default     = null
}

variable "payloads_bucket_name" {
  description = "Bucket of webhook payloads too large for a BigQuery row (over 8 MiB); their rows point at it. Default: PROJECT-PREFIX-payloads."
  type        = string
  default     = null
}

variable "logs_bucket_lifecycle_rules" {
  description = "Lifecycle rules of the logs bucket: after age_days, either Delete the object or SetStorageClass to storage_class. The default moves logs to Nearline after 30 days and keeps them."
  type = list(object({
    age_days      = number
    action        = string
    storage_class = optional(string)
  }))
  default = [{ age_days = 30, action = "SetStorageClass", storage_class = "NEARLINE" }]

  validation {
    condition = alltrue([for rule in var.logs_bucket_lifecycle_rules :
      rule.age_days >= 0 && (rule.action == "Delete" || (rule.action == "SetStorageClass" && contains(["NEARLINE", "COLDLINE", "ARCHIVE"], coalesce(rule.storage_class, "-"))))
    ])
    error_message = "Each rule needs age_days >= 0 and action Delete, or action SetStorageClass with storage_class NEARLINE, COLDLINE or ARCHIVE."
  }
}

variable "payloads_bucket_lifecycle_rules" {
  description = "Lifecycle rules of the payloads bucket (same shape as logs_bucket_lifecycle_rules). The default keeps payloads: a deleted payload is a lost event."
  type = list(object({
    age_days      = number
    action        = string
    storage_class = optional(string)
  }))
  default = []

  validation {
    condition = alltrue([for rule in var.payloads_bucket_lifecycle_rules :
      rule.age_days >= 0 && (rule.action == "Delete" || (rule.action == "SetStorageClass" && contains(["NEARLINE", "COLDLINE", "ARCHIVE"], coalesce(rule.storage_class, "-"))))
    ])
    error_message = "Each rule needs age_days >= 0 and action Delete, or action SetStorageClass with storage_class NEARLINE, COLDLINE or ARCHIVE."
  }
}

variable "lock_bucket_lifecycle_rules" {
  description = "Lifecycle rules of the lock bucket (same shape as logs_bucket_lifecycle_rules). It holds one small object while a retry run works; none are needed."
  type = list(object({
    age_days      = number
    action        = string
    storage_class = optional(string)
  }))
  default = []

  validation {
    condition = alltrue([for rule in var.lock_bucket_lifecycle_rules :
      rule.age_days >= 0 && (rule.action == "Delete" || (rule.action == "SetStorageClass" && contains(["NEARLINE", "COLDLINE", "ARCHIVE"], coalesce(rule.storage_class, "-"))))
    ])
    error_message = "Each rule needs age_days >= 0 and action Delete, or action SetStorageClass with storage_class NEARLINE, COLDLINE or ARCHIVE."
  }
}

# --- Secrets ----------------------------------------------------------------------------------

variable "webhook_secret_id" {
  description = "Secret Manager secret holding the webhook secret(s), one per line (two during a rotation). Created empty; add its value out of band (docs/deploy-gcp.md). Default: PREFIX-webhook-secrets."
  type        = string
  default     = null
}

variable "webhook_secret_version" {
  description = "Version of the webhook secret gma serve reads: latest, or a number. Pinning a number and raising it deploys a new revision, which is how a rotation takes effect (docs/operations.md)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.webhook_secret_version))
    error_message = "webhook_secret_version must be latest or a version number."
  }
}

variable "github_private_key_secret_id" {
  description = "Secret Manager secret holding the GitHub App's private key (PEM). Created empty; add its value out of band. Default: PREFIX-github-private-key."
  type        = string
  default     = null
}

variable "github_private_key_secret_version" {
  description = "Version of the App's private key the jobs read: latest, or a number."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.github_private_key_secret_version))
    error_message = "github_private_key_secret_version must be latest or a version number."
  }
}

# --- GitHub -----------------------------------------------------------------------------------

variable "github_app_id" {
  description = "The GitHub App's id (its settings page, \"App ID\"). The retry and leech jobs authenticate as the App."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.github_app_id))
    error_message = "github_app_id must be the App's numeric id."
  }
}

variable "github_api_url" {
  description = "GitHub's REST API: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server. Both jobs get it, and so do the retry checkpoints (which are kept per GitHub instance) and the redelivery window (3 days on github.com, 7 on Enterprise Server)."
  type        = string
  default     = "https://api.github.com"

  validation {
    condition     = can(regex("^https://[^\\s/]+(/[^\\s]*)?$", var.github_api_url))
    error_message = "github_api_url must be an https:// URL, e.g. https://github.example.com/api/v3."
  }
}

# --- gma serve (Cloud Run service) ------------------------------------------------------------

variable "serve_min_instances" {
  description = "Instances of gma serve kept warm. 0 lets the service scale to zero (a cold start takes well under GitHub's 10 s delivery timeout)."
  type        = number
  default     = 0

  validation {
    condition     = var.serve_min_instances >= 0 && floor(var.serve_min_instances) == var.serve_min_instances
    error_message = "serve_min_instances must be a whole number >= 0."
  }
}

variable "serve_max_instances" {
  description = "Most instances of gma serve."
  type        = number
  default     = 10

  validation {
    condition     = var.serve_max_instances >= 1 && floor(var.serve_max_instances) == var.serve_max_instances
    error_message = "serve_max_instances must be a whole number >= 1."
  }
}

variable "serve_concurrency" {
  description = "Requests one gma serve instance takes at once (Cloud Run's container concurrency)."
  type        = number
  default     = 80

  validation {
    condition     = var.serve_concurrency >= 1 && var.serve_concurrency <= 1000
    error_message = "serve_concurrency must be between 1 and 1000."
  }
}

variable "serve_cpu" {
  description = "CPU limit of a gma serve instance."
  type        = string
  default     = "1"
}

variable "serve_memory" {
  description = "Memory limit of a gma serve instance. Bodies over 512 KiB are spooled to the in-memory file system while they land; keep room for a few 25 MiB deliveries."
  type        = string
  default     = "512Mi"
}

variable "custom_domain" {
  description = "A domain for the webhook (e.g. gma.example.com), served by a global external HTTPS load balancer with a Google-managed certificate. Point its DNS A record at the load_balancer_ip output. null: only the run.app URL."
  type        = string
  default     = null

  validation {
    condition     = var.custom_domain == null || can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.custom_domain))
    error_message = "custom_domain must be a lowercase DNS name such as gma.example.com."
  }
}

# --- Schedules --------------------------------------------------------------------------------

variable "scheduler_region" {
  description = "Region of the Cloud Scheduler jobs. Default: region."
  type        = string
  default     = null
}

variable "scheduler_time_zone" {
  description = "Time zone the cron schedules are read in."
  type        = string
  default     = "Etc/UTC"
}

# --- gma retry (Cloud Run job) ----------------------------------------------------------------

variable "retry_schedule" {
  description = "Cron schedule of gma retry. GitHub keeps failed deliveries redeliverable for 3 days (7 on Enterprise Server); hourly recovers them long before."
  type        = string
  default     = "0 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.retry_schedule))) == 5
    error_message = "retry_schedule must be a five-field cron expression such as \"0 * * * *\"."
  }
}

variable "retry_mode" {
  description = "How gma retry recovers an event: redeliver (GitHub sends it to gma serve again) or fetch (gma reads the payload from GitHub's delivery log and lands it itself)."
  type        = string
  default     = "redeliver"

  validation {
    condition     = contains(["redeliver", "fetch"], var.retry_mode)
    error_message = "retry_mode must be redeliver or fetch."
  }
}

variable "retry_hooks" {
  description = "Webhooks whose deliveries gma retry examines: app (the GitHub App's), repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID (the last two need a GITHUB_TOKEN, which this module does not set)."
  type        = list(string)
  default     = ["app"]

  validation {
    condition     = length(var.retry_hooks) > 0 && alltrue([for hook in var.retry_hooks : can(regex("^(app|repos/[^/,\\s]+/[^/,\\s]+/hooks/[0-9]+|orgs/[^/,\\s]+/hooks/[0-9]+)$", hook))])
    error_message = "retry_hooks entries must be app, repos/OWNER/REPO/hooks/ID or orgs/ORG/hooks/ID."
  }
}

variable "retry_max_duration_minutes" {
  description = "Time budget of one gma retry run (JOB_TIMEOUT). Once spent, no further recovery starts and the next run continues from the checkpoint. The Cloud Run task timeout is this plus 10 minutes, so a run ends on its own before Cloud Run stops it."
  type        = number
  default     = 45

  validation {
    condition     = var.retry_max_duration_minutes >= 1 && var.retry_max_duration_minutes <= 1430
    error_message = "retry_max_duration_minutes must be between 1 and 1430 (Cloud Run jobs stop a task after 24 hours)."
  }
}

variable "retry_lock_ttl" {
  description = "How long the retry lock lasts without renewal (LOCK_TTL). A running job renews it, so it may be much shorter than a run; it is how long a crashed run blocks the next."
  type        = string
  default     = "5m"

  validation {
    condition     = can(regex("^[0-9]+(s|m|h)$", var.retry_lock_ttl))
    error_message = "retry_lock_ttl must be a duration such as 300s, 5m or 1h."
  }
}

variable "retry_alert_margin" {
  description = "The retry summary raises its ALERT when an unrecovered failure is this close to the end of GitHub's redelivery window."
  type        = string
  default     = "1d"

  validation {
    condition     = can(regex("^[0-9]+(m|h|d)$", var.retry_alert_margin))
    error_message = "retry_alert_margin must be a duration such as 12h or 1d."
  }
}

variable "retry_cpu" {
  description = "CPU limit of a gma retry task."
  type        = string
  default     = "1"
}

variable "retry_memory" {
  description = "Memory limit of a gma retry task."
  type        = string
  default     = "512Mi"
}

# --- gma views refresh (Cloud Run job) --------------------------------------------------------

variable "refresh_schedule" {
  description = "Cron schedule of gma views refresh, which brings the typed event tables the analyst views read up to date: the views lag the events by at most this interval plus a run's length."
  type        = string
  default     = "*/10 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.refresh_schedule))) == 5
    error_message = "refresh_schedule must be a five-field cron expression such as \"*/10 * * * *\"."
  }
}

variable "refresh_task_count" {
  description = "Tasks one gma views refresh execution is split into; each takes the typed tables whose name hashes to its index."
  type        = number
  default     = 1

  validation {
    condition     = var.refresh_task_count >= 1 && var.refresh_task_count <= 16 && floor(var.refresh_task_count) == var.refresh_task_count
    error_message = "refresh_task_count must be a whole number between 1 and 16 (there are 16 typed tables)."
  }
}

variable "refresh_lateness" {
  description = "How late an event may land after its received time and still reach the typed tables with the next refresh (several serve instances land rows a little out of order; GMA_REFRESH_LATENESS)."
  type        = string
  default     = "1h"
}

variable "refresh_timeout_minutes" {
  description = "Cloud Run task timeout of gma views refresh. The first run on a large dataset builds the tables from all events; a run stopped by the timeout goes on from its last finished chunk next time."
  type        = number
  default     = 60

  validation {
    condition     = var.refresh_timeout_minutes >= 1 && var.refresh_timeout_minutes <= 1440
    error_message = "refresh_timeout_minutes must be between 1 and 1440."
  }
}

variable "refresh_cpu" {
  description = "CPU limit of a gma views refresh task (the work runs in BigQuery)."
  type        = string
  default     = "1"
}

variable "refresh_memory" {
  description = "Memory limit of a gma views refresh task (rows pass through it in batches of bounded size)."
  type        = string
  default     = "1Gi"
}

# --- gma leech (Cloud Run job) ----------------------------------------------------------------

variable "leech_schedule" {
  description = "Cron schedule of gma leech. GitHub deletes logs after 90 days by default (often fewer); hourly archives them within the hour."
  type        = string
  default     = "30 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.leech_schedule))) == 5
    error_message = "leech_schedule must be a five-field cron expression such as \"30 * * * *\"."
  }
}

variable "leech_task_count" {
  description = "Tasks one gma leech execution is split into; each takes the runs whose id hashes to its index (CLOUD_RUN_TASK_INDEX of CLOUD_RUN_TASK_COUNT)."
  type        = number
  default     = 1

  validation {
    condition     = var.leech_task_count >= 1 && var.leech_task_count <= 1000 && floor(var.leech_task_count) == var.leech_task_count
    error_message = "leech_task_count must be a whole number between 1 and 1000."
  }
}

variable "leech_concurrency" {
  description = "Downloads in flight at once in each gma leech task (GMA_LEECH_CONCURRENCY)."
  type        = number
  default     = 8

  validation {
    condition     = var.leech_concurrency >= 1 && var.leech_concurrency <= 256
    error_message = "leech_concurrency must be between 1 and 256."
  }
}

variable "leech_timeout_minutes" {
  description = "Cloud Run task timeout of gma leech. Keep it below the schedule's interval so executions do not overlap; a task stopped by it loses only its downloads in flight, which the next run redoes."
  type        = number
  default     = 50

  validation {
    condition     = var.leech_timeout_minutes >= 1 && var.leech_timeout_minutes <= 1440
    error_message = "leech_timeout_minutes must be between 1 and 1440."
  }
}

variable "leech_cpu" {
  description = "CPU limit of a gma leech task (indexing zips is CPU-bound)."
  type        = string
  default     = "1"
}

variable "leech_memory" {
  description = "Memory limit of a gma leech task (memory stays flat in a zip's size)."
  type        = string
  default     = "1Gi"
}
