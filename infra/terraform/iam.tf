# Least-privilege IAM policies, one per process. Attach them to whatever identity runs the process:
# an EC2 instance profile role (one host running ingest + worker gets both), or an IRSA / EKS Pod
# Identity role per Kubernetes service account (docs/operations.md, "Terraform").
#
# Each action below is one the code calls (shared/src/queue/sqs/): SendMessageBatch and
# DeleteMessageBatch are authorised by sqs:SendMessage and sqs:DeleteMessage,
# ChangeMessageVisibilityBatch by sqs:ChangeMessageVisibility.

# --- ingest: enqueue, and store oversize payloads ---------------------------------------------------
data "aws_iam_policy_document" "ingest" {
  statement {
    sid = "EnqueueEvents"
    actions = [
      "sqs:SendMessage",
      # Read at start (MaximumMessageSize, RedrivePolicy) and by GET /ready.
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.main.arn]
  }

  statement {
    sid       = "WriteClaimChecks"
    actions   = ["s3:PutObject"]
    resources = [local.claims_objects_arn]
  }

  dynamic "statement" {
    for_each = local.use_kms ? [var.kms_key_arn] : []
    content {
      sid = "UseQueueAndBucketKey"
      # SendMessage to an SSE-KMS queue needs both; PutObject with SSE-KMS needs GenerateDataKey.
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

# --- worker: consume, dead-letter, read and remove oversize payloads ---------------------------------
data "aws_iam_policy_document" "worker" {
  statement {
    sid = "ConsumeEvents"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      # The worker extends the visibility of messages in work (HOOKBRIDGE_VISIBILITY_TIMEOUT).
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.main.arn]
  }

  statement {
    sid = "DeadLetter"
    actions = [
      "sqs:GetQueueAttributes",
      # Finds the DLQ from the RedrivePolicy when SQS_DLQ_URL is not set.
      "sqs:GetQueueUrl",
      # A message retrying cannot help (Jira 400/401/403/404) is sent to the DLQ at once, with the
      # reason as a message attribute, then deleted from the main queue.
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "ReadClaimChecks"
    actions   = ["s3:GetObject"]
    resources = [local.claims_objects_arn]
  }

  # Without ListBucket, S3 answers a missing object with 403 instead of 404: the worker would
  # retry a claim that will never appear instead of dead-lettering it at once.
  statement {
    sid       = "TellMissingClaimsFromDenied"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${local.claims_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.claims_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = local.use_kms ? [var.kms_key_arn] : []
    content {
      sid       = "UseQueueAndBucketKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

# --- operator CLI: inspect, redrive and purge the DLQ ------------------------------------------------
data "aws_iam_policy_document" "operator" {
  statement {
    sid = "ManageDeadLetters"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      # A listing receives the messages and makes them visible again at once.
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:PurgeQueue",
      "sqs:StartMessageMoveTask",
      "sqs:ListMessageMoveTasks",
      "sqs:CancelMessageMoveTask",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid = "RedriveToMainQueue"
    actions = [
      "sqs:SendMessage",
      # The CLI opens the main queue like every process, and a move task names it by ARN.
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.main.arn]
  }

  dynamic "statement" {
    for_each = local.use_kms ? [var.kms_key_arn] : []
    content {
      sid       = "UseQueueKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_policy" "ingest" {
  name        = "${var.name_prefix}-ingest"
  description = "hookbridge-ingest: send to the main queue, write claim checks."
  policy      = data.aws_iam_policy_document.ingest.json
}

resource "aws_iam_policy" "worker" {
  name        = "${var.name_prefix}-worker"
  description = "hookbridge-worker: consume the main queue, dead-letter, read claim checks."
  policy      = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_policy" "operator" {
  name        = "${var.name_prefix}-operator"
  description = "hookbridge operator CLI: inspect, redrive and purge the dead-letter queue."
  policy      = data.aws_iam_policy_document.operator.json
}
