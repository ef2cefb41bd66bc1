# Provider pins. `terraform init` writes the exact versions it picked to .terraform.lock.hcl:
# commit that file in the repository that applies this configuration, so every apply uses the
# same provider builds.
terraform {
  # 1.5: `check` blocks and the lifecycle preconditions used here.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    # Only for the optional webhook security group: its `github_ip_ranges` data source reads
    # GitHub's published hook ranges (GET https://api.github.com/meta, no token needed).
    github = {
      source  = "integrations/github"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge({ "app" = "hookbridge" }, var.tags)
  }
}

# Anonymous is enough for the meta API; set GITHUB_TOKEN in the environment to avoid its low
# anonymous rate limit on busy CI runners.
provider "github" {}
