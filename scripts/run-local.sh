#!/usr/bin/env bash
# Starts one-machine mode from a release build: ingest + worker in one process, embedded queue and
# store in $DATA_DIR. On first start it creates a development webhook secret in the data dir (used
# for both GitHub and Jira unless GITHUB_WEBHOOK_SECRET / JIRA_WEBHOOK_SECRET are already set).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-./data}
mkdir -p "$DATA_DIR"
secret_file="$DATA_DIR/dev-webhook-secret"
if [ ! -s "$secret_file" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(24))' > "$secret_file")
    echo "created a development webhook secret in $secret_file"
fi
export HOOKBRIDGE_DATA_DIR="$DATA_DIR"
export GITHUB_WEBHOOK_SECRET="${GITHUB_WEBHOOK_SECRET:-$(cat "$secret_file")}"
export JIRA_WEBHOOK_SECRET="${JIRA_WEBHOOK_SECRET:-$(cat "$secret_file")}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
# Without a Jira the worker runs dry: the Jira requests it would send land in the audit trail.
# A default project makes the dry run show a complete request for the sample event.
export JIRA_PROJECT_KEY="${JIRA_PROJECT_KEY:-DEMO}"
echo "webhook secret: $secret_file   (send a signed sample event: make demo; approve a sample CR: make demo-cr)"
exec "${CARGO_TARGET_DIR:-target}/release/hookbridge" run "$@"
