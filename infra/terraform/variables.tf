# Every input of the hookbridge stack. terraform.tfvars.example shows a filled-in set.

variable "aws_region" {
  description = "AWS region of every resource (also the AWS_REGION the processes get)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name (queues, bucket, policies, Redis)."
  type        = string
  default     = "hookbridge"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.name_prefix))
    error_message = "name_prefix: lower-case letters, digits and '-', at most 31 characters."
  }
}

variable "tags" {
  description = "Extra tags put on every resource (merged with app = hookbridge)."
  type        = map(string)
  default     = {}
}

# --- Queues -------------------------------------------------------------------------------------

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the DLQ (RedrivePolicy maxReceiveCount). Set HOOKBRIDGE_MAX_RECEIVE_COUNT to the same number (output max_receive_count)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000 (SQS's range)."
  }
}

variable "main_retention_seconds" {
  description = "How long the main queue keeps a message (SQS MessageRetentionPeriod). Default 4 days: long enough to ride out a weekend-long Jira outage."
  type        = number
  default     = 345600

  validation {
    condition     = var.main_retention_seconds >= 60 && var.main_retention_seconds <= 1209600
    error_message = "main_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "dlq_retention_seconds" {
  description = "How long the dead-letter queue keeps a message. Default 14 days (the SQS maximum). Must exceed main_retention_seconds: SQS keeps a message's original enqueue time when it dead-letters it."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_retention_seconds >= 60 && var.dlq_retention_seconds <= 1209600
    error_message = "dlq_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "visibility_timeout_seconds" {
  description = "Main queue VisibilityTimeout. Keep it equal to HOOKBRIDGE_VISIBILITY_TIMEOUT (default 60): the worker receives with that timeout and extends it while a message is in work."
  type        = number
  default     = 60
}

variable "max_message_size" {
  description = "Main queue MaximumMessageSize in bytes. The ingest reads it at start: a larger envelope goes through a claim check (S3 bucket below)."
  type        = number
  default     = 262144
}

variable "kms_key_arn" {
  description = "ARN of a customer-managed KMS key for the queues, the claims bucket and Redis at rest. null: SQS-managed SSE, SSE-S3 and the ElastiCache service key (no KMS permissions needed)."
  type        = string
  default     = null
}

# --- Claim checks (S3) --------------------------------------------------------------------------

variable "claims_bucket_name" {
  description = "Name of the S3 bucket holding claim-check payloads (HOOKBRIDGE_CLAIM_S3_BUCKET). null: <name_prefix>-claims-<account id>-<region>."
  type        = string
  default     = null
}

variable "claims_prefix" {
  description = "Key prefix of the claim objects (HOOKBRIDGE_CLAIM_S3_PREFIX). The IAM policies grant access below this prefix only."
  type        = string
  default     = "claims/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]*/$", var.claims_prefix))
    error_message = "claims_prefix must end with '/' and use S3's safe key characters only."
  }
}

variable "claims_expiration_days" {
  description = "Days after which S3 deletes a claim object the worker did not delete. null: the longer of the two queues' retentions + 1 day (15 with the defaults), so an oversize dead letter stays redrivable for as long as the DLQ keeps it."
  type        = number
  default     = null

  validation {
    condition     = var.claims_expiration_days == null || try(var.claims_expiration_days >= 1, false)
    error_message = "claims_expiration_days must be at least 1."
  }
}

# --- Redis (optional) ---------------------------------------------------------------------------

variable "create_redis" {
  description = "Create an ElastiCache Redis replication group for REDIS_URL. Several worker processes (or hosts) need one shared store; a single host can use the embedded store instead."
  type        = bool
  default     = false
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_engine_version" {
  description = "Redis engine version (7.x: the parameter group family below is redis7)."
  type        = string
  default     = "7.1"
}

variable "redis_replicas" {
  description = "Replicas besides the primary (at least 1: automatic failover to another availability zone is always on)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_replicas >= 1 && var.redis_replicas <= 5
    error_message = "redis_replicas must be between 1 and 5 (failover needs a replica)."
  }
}

variable "redis_auth_token" {
  description = "Redis AUTH token (16-128 printable characters, no @, \" or /). Goes into REDIS_URL as rediss://:TOKEN@HOST:6379. Pass it with TF_VAR_redis_auth_token, never in a committed file; it is kept in the Terraform state, so keep the state encrypted and access-controlled."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.redis_auth_token == null || can(regex("^[^@\"/]{16,128}$", var.redis_auth_token))
    error_message = "redis_auth_token: 16 to 128 characters, without @, \" or /."
  }
}

variable "redis_snapshot_retention_days" {
  description = "Days of automatic daily Redis snapshots kept (0 turns them off). The store holds Change Request records, dedupe marks and audit chain heads."
  type        = number
  default     = 7
}

# --- Network --------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the Redis replication group and of the webhook security group. Required when create_redis or create_webhook_security_group is true."
  type        = string
  default     = null
}

variable "redis_subnet_ids" {
  description = "Private subnets (two or more availability zones) for Redis."
  type        = list(string)
  default     = []
}

variable "redis_client_security_group_ids" {
  description = "Security groups of the worker hosts or pods (and the operator's host) allowed to reach Redis on 6379."
  type        = list(string)
  default     = []
}

variable "create_webhook_security_group" {
  description = "Create a security group admitting webhook_port only from GitHub's hook ranges and atlassian_webhook_cidrs. Attach it to the nginx host or the load balancer in front of the ingest."
  type        = bool
  default     = false
}

variable "webhook_port" {
  description = "TCP port the webhook security group opens (443: nginx or a TLS load balancer in front of the ingest)."
  type        = number
  default     = 443
}

variable "atlassian_webhook_cidrs" {
  description = "CIDRs Jira Cloud sends webhooks from: the egress ranges published at https://ip-ranges.atlassian.com/ (IPv4 and IPv6). Review them when Atlassian announces changes."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.atlassian_webhook_cidrs : can(cidrhost(c, 0))])
    error_message = "atlassian_webhook_cidrs must be CIDR blocks (e.g. 192.0.2.0/28 or 2001:db8::/36)."
  }
}
