# Optional ElastiCache Redis for REDIS_URL (create_redis = true): the store several worker
# processes share (dedupe, per-issue locks, the GitHub -> Jira map, Change Request records, the
# alert outbox, audit chain heads). One primary with replicas, cluster mode off: hookbridge needs a
# single Redis, not Redis Cluster.
#
# REDIS_URL = rediss://:<redis_auth_token>@<output redis_primary_endpoint>:6379
# (rediss: in-transit encryption is required below, so clients must speak TLS.)

resource "aws_elasticache_subnet_group" "redis" {
  count = var.create_redis ? 1 : 0

  name       = "${var.name_prefix}-redis"
  subnet_ids = var.redis_subnet_ids
}

# maxmemory-policy noeviction: an evicted lock fence or GitHub -> Jira mapping would let a duplicate
# Jira issue through (README, REDIS_URL). Full memory then fails writes loudly instead; alarm on
# the DatabaseMemoryUsagePercentage metric.
resource "aws_elasticache_parameter_group" "redis" {
  count = var.create_redis ? 1 : 0

  name   = "${var.name_prefix}-redis7"
  family = "redis7"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_security_group" "redis" {
  count = var.create_redis ? 1 : 0

  name        = "${var.name_prefix}-redis"
  description = "hookbridge Redis: 6379 from the worker and operator security groups only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "redis_clients" {
  for_each = var.create_redis ? toset(var.redis_client_security_group_ids) : toset([])

  security_group_id            = aws_security_group.redis[0].id
  description                  = "Redis (TLS) from hookbridge clients"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = each.value
}

resource "aws_elasticache_replication_group" "redis" {
  count = var.create_redis ? 1 : 0

  replication_group_id = "${var.name_prefix}-redis"
  description          = "hookbridge store (REDIS_URL)"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.redis[0].name
  subnet_group_name    = aws_elasticache_subnet_group.redis[0].name
  security_group_ids   = [aws_security_group.redis[0].id]

  # A primary and at least one replica in another availability zone, promoted automatically:
  # the store holds state that cannot be rebuilt (locks, CR records, audit chain heads).
  num_cache_clusters         = 1 + var.redis_replicas
  automatic_failover_enabled = true
  multi_az_enabled           = true

  # Encryption in transit (TLS) with an AUTH token, and at rest.
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = var.redis_auth_token
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  auto_minor_version_upgrade = true
  apply_immediately          = false

  lifecycle {
    precondition {
      condition     = var.redis_auth_token != null
      error_message = "create_redis needs redis_auth_token (pass it as TF_VAR_redis_auth_token)."
    }
    precondition {
      condition     = var.vpc_id != null && length(var.redis_subnet_ids) >= 1
      error_message = "create_redis needs vpc_id and redis_subnet_ids."
    }
  }
}
