# Shared lookups and names.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  claims_bucket = coalesce(var.claims_bucket_name, "${var.name_prefix}-claims-${local.account_id}-${var.aws_region}")

  # Claim objects live no longer than the message that points at them could: the longer of the
  # two queues' retentions (a dead letter must stay redrivable with its payload for as long as
  # the DLQ keeps it), rounded up to whole days, plus one day of slack for clock and lifecycle
  # lag; claims_expiration_days overrides it.
  claims_expiry_days = coalesce(
    var.claims_expiration_days,
    ceil(max(var.main_retention_seconds, var.dlq_retention_seconds) / 86400) + 1,
  )

  claims_objects_arn = "arn:${local.partition}:s3:::${local.claims_bucket}/${var.claims_prefix}*"

  use_kms = var.kms_key_arn != null
}
