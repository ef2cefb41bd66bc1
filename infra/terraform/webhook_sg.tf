# Optional (create_webhook_security_group = true): a security group that admits webhook_port only
# from the addresses GitHub and Atlassian send webhooks from. Attach it to the nginx host or the
# load balancer in front of the ingest, next to that resource's usual security groups (this one
# has no egress rules of its own).
#
# The trade-off, in short:
# - It cuts the internet's background noise (scanners, floods) before it reaches nginx/the ingest.
# - The ranges change. GitHub's are read from its meta API at every plan/apply, so a stale
#   apply means missed deliveries from a new range; Atlassian's are a variable you keep up to date
#   by hand from https://ip-ranges.atlassian.com/. Re-apply on a schedule (e.g. weekly in CI) and
#   watch for deliveries failing with connection timeouts in GitHub's "Recent Deliveries" and
#   Jira's webhook log.
# - It is not the security boundary: anyone can run code on GitHub's or Atlassian's hook senders'
#   networks (any GitHub user can point a webhook at us). TLS and the HMAC signatures
#   (GITHUB_WEBHOOK_SECRET, JIRA_WEBHOOK_SECRET) are what really decide what is accepted.
# - Security group quotas: 60 inbound rules per address family by default; GitHub's plus
#   Atlassian's lists fit today, but check after each change (AWS error RulesPerSecurityGroupLimitExceeded).

data "github_ip_ranges" "current" {
  count = var.create_webhook_security_group ? 1 : 0
}

locals {
  webhook_sources = var.create_webhook_security_group ? merge(
    { for cidr in data.github_ip_ranges.current[0].hooks_ipv4 : "github ${cidr}" => cidr },
    { for cidr in data.github_ip_ranges.current[0].hooks_ipv6 : "github ${cidr}" => cidr },
    { for cidr in var.atlassian_webhook_cidrs : "atlassian ${cidr}" => cidr },
  ) : {}
}

resource "aws_security_group" "webhooks" {
  #checkov:skip=CKV2_AWS_5:Attached outside this configuration, to the nginx instance or load balancer that fronts the ingest (output webhook_security_group_id).
  count = var.create_webhook_security_group ? 1 : 0

  name        = "${var.name_prefix}-webhooks"
  description = "hookbridge webhooks: ${var.webhook_port}/tcp from GitHub hook and Atlassian ranges only"
  vpc_id      = var.vpc_id

  lifecycle {
    precondition {
      condition     = var.vpc_id != null
      error_message = "create_webhook_security_group needs vpc_id."
    }
    precondition {
      condition     = length(var.atlassian_webhook_cidrs) > 0
      error_message = "create_webhook_security_group needs atlassian_webhook_cidrs (from https://ip-ranges.atlassian.com/), or Jira webhooks would be refused."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "webhooks" {
  for_each = local.webhook_sources

  security_group_id = aws_security_group.webhooks[0].id
  description       = "webhooks from ${split(" ", each.key)[0]}"
  ip_protocol       = "tcp"
  from_port         = var.webhook_port
  to_port           = var.webhook_port
  cidr_ipv4         = can(regex(":", each.value)) ? null : each.value
  cidr_ipv6         = can(regex(":", each.value)) ? each.value : null
}
