# What the processes' configuration needs (docs/operations.md maps each output to a variable).

output "queue_url" {
  description = "SQS_QUEUE_URL of every process."
  value       = aws_sqs_queue.main.url
}

output "queue_arn" {
  description = "ARN of the main queue."
  value       = aws_sqs_queue.main.arn
}

output "dlq_url" {
  description = "SQS_DLQ_URL of every process."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "max_receive_count" {
  description = "HOOKBRIDGE_MAX_RECEIVE_COUNT of the worker (equal to the RedrivePolicy's maxReceiveCount)."
  value       = var.max_receive_count
}

output "claims_bucket" {
  description = "HOOKBRIDGE_CLAIM_S3_BUCKET of the ingest and the worker."
  value       = aws_s3_bucket.claims.bucket
}

output "claims_prefix" {
  description = "HOOKBRIDGE_CLAIM_S3_PREFIX of the ingest and the worker."
  value       = var.claims_prefix
}

output "ingest_policy_arn" {
  description = "IAM policy for hookbridge-ingest."
  value       = aws_iam_policy.ingest.arn
}

output "worker_policy_arn" {
  description = "IAM policy for hookbridge-worker."
  value       = aws_iam_policy.worker.arn
}

output "operator_policy_arn" {
  description = "IAM policy for operators running the hookbridge CLI's dead-letter commands."
  value       = aws_iam_policy.operator.arn
}

output "redis_primary_endpoint" {
  description = "Host of REDIS_URL (rediss://:TOKEN@HOST:6379); null without create_redis."
  value       = var.create_redis ? aws_elasticache_replication_group.redis[0].primary_endpoint_address : null
}

output "redis_security_group_id" {
  description = "Security group of the Redis replication group; null without create_redis."
  value       = var.create_redis ? aws_security_group.redis[0].id : null
}

output "webhook_security_group_id" {
  description = "Security group admitting webhooks from GitHub and Atlassian ranges; null unless create_webhook_security_group."
  value       = var.create_webhook_security_group ? aws_security_group.webhooks[0].id : null
}
