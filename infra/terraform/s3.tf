# The claim-check bucket: payloads too large for a queue message (HOOKBRIDGE_CLAIM_S3_BUCKET /
# HOOKBRIDGE_CLAIM_S3_PREFIX). The ingest writes an object under the prefix before it enqueues the
# envelope that names it; the worker reads it. hookbridge never deletes one (several messages —
# redeliveries, redriven dead letters — may name the same content-addressed object): the
# lifecycle rule below expires them. Objects are transient and content-addressed, which is why
# versioning, replication and access logging are off (each is skipped in place below, with the
# reason).

resource "aws_s3_bucket" "claims" {
  #checkov:skip=CKV_AWS_21:Versioning off by design: claim objects are immutable (content-addressed) and expire by lifecycle; versions would keep webhook payloads past their use.
  #checkov:skip=CKV_AWS_144:No cross-region replication: a claim object lives minutes to days and only matters together with its queue message, which is in one region.
  #checkov:skip=CKV_AWS_18:No server access logging: the bucket holds transient payloads; enable CloudTrail S3 data events for an access trail instead of a second logging bucket.
  #checkov:skip=CKV2_AWS_62:No event notifications: nothing reacts to claim objects; the queue message is the notification.
  bucket = local.claims_bucket

  # Deleting the stack must not silently delete payloads of messages still queued.
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "claims" {
  bucket = aws_s3_bucket.claims.id

  rule {
    # ACLs off: access is decided by IAM and the bucket policy alone.
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "claims" {
  bucket = aws_s3_bucket.claims.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "claims" {
  bucket = aws_s3_bucket.claims.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.use_kms ? "aws:kms" : "AES256"
      kms_master_key_id = var.kms_key_arn
    }
    # With KMS: one data key per bucket instead of one KMS call per object.
    bucket_key_enabled = local.use_kms
  }
}

resource "aws_s3_bucket_versioning" "claims" {
  bucket = aws_s3_bucket.claims.id

  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "claims" {
  bucket = aws_s3_bucket.claims.id

  rule {
    id     = "expire-claims"
    status = "Enabled"

    filter {
      prefix = var.claims_prefix
    }

    # The only deletion of claim objects: once no queue can still hold a message naming one
    # (the longer retention + 1 day, see main.tf).
    expiration {
      days = local.claims_expiry_days
    }
  }

  # Whole bucket: a crashed multipart upload leaves parts that are billed but never readable.
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# TLS only: any request over plain HTTP is refused, whoever makes it.
data "aws_iam_policy_document" "claims_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.claims.arn,
      "${aws_s3_bucket.claims.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "claims" {
  bucket = aws_s3_bucket.claims.id
  policy = data.aws_iam_policy_document.claims_bucket.json

  # A bucket policy put before the public access block could be judged public and refused.
  depends_on = [aws_s3_bucket_public_access_block.claims]
}
