# The main queue and its dead-letter queue.
#
# SQS moves a message to the DLQ by itself after max_receive_count receives (a worker that crashed
# or kept failing); the worker also moves a message there at once, with the reason in a message
# attribute, when retrying cannot help (Jira answered 400/401/403/404). HOOKBRIDGE_MAX_RECEIVE_COUNT
# must equal max_receive_count so that the worker knows which attempt is the last one.

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name_prefix}-events-dlq"
  message_retention_seconds = var.dlq_retention_seconds
  # Long polling for the operator CLI's reads; the DLQ has no consumer otherwise.
  receive_wait_time_seconds = 20
  max_message_size          = var.max_message_size

  # Encryption at rest: SQS-managed keys unless a KMS key is given.
  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.use_kms ? 300 : null
}

resource "aws_sqs_queue" "main" {
  name                       = "${var.name_prefix}-events"
  message_retention_seconds  = var.main_retention_seconds
  visibility_timeout_seconds = var.visibility_timeout_seconds
  # Long polling: fewer empty receives (SQS bills per call), events still picked up at once.
  receive_wait_time_seconds = 20
  max_message_size          = var.max_message_size

  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.use_kms ? 300 : null

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  lifecycle {
    precondition {
      condition     = var.dlq_retention_seconds > var.main_retention_seconds
      error_message = "dlq_retention_seconds must exceed main_retention_seconds: a dead-lettered message keeps its original enqueue time, so a shorter DLQ retention would drop it early."
    }
  }
}

# Only the main queue may use the DLQ as its dead-letter target (a separate resource: the main
# queue's redrive policy already refers to the DLQ, so the DLQ cannot refer back inline).
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main.arn]
  })
}
