#!/usr/bin/env bash
# The Change Request flow end to end against the server `make run` started (dry-run: no Jira, no
# Slack needed): a signed Jira webhook moves CR-2026-0001 to Pending Approval, a second one approves
# it; the worker stores the record, queues one alert (written to the audit trail, as no Slack is
# configured) and audits every decision. Then the CR, the alert and the audit check are shown.
# DATA_DIR, URL (the ingest) and HOOKBRIDGE_BIN (the hookbridge binary) can be set.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-./data}
URL=${URL:-http://127.0.0.1:8080}
bin=${HOOKBRIDGE_BIN:-"${CARGO_TARGET_DIR:-target}/release/hookbridge"}
key=CR-2026-0001
secret_file="$DATA_DIR/dev-webhook-secret"
[ -s "$secret_file" ] || { echo "no $secret_file: start 'make run' first" >&2; exit 2; }
export JIRA_WEBHOOK_SECRET="${JIRA_WEBHOOK_SECRET:-$(cat "$secret_file")}"
export HOOKBRIDGE_DATA_DIR="$DATA_DIR"

echo "# Jira: $key Draft → Pending Approval, then → Approved (signed webhooks)"
"$bin" send-test-event --url "$URL" --cr "$key" --from-status Draft --status "Pending Approval"
"$bin" send-test-event --url "$URL" --cr "$key" --from-status "Pending Approval" --status Approved

echo
echo "# hookbridge cr status $key"
for _ in $(seq 1 100); do
    if "$bin" cr status "$key" 2>/dev/null | head -n 1 | grep -q " Approved "; then
        break
    fi
    sleep 0.1
done
"$bin" cr status "$key"

echo
echo "# the Slack alert (dry-run: written to the audit trail)"
for _ in $(seq 1 50); do
    if grep -h '"action":"slack.alert.sent"' "$DATA_DIR"/audit/audit-*.jsonl 2>/dev/null | grep -q "$key"; then
        break
    fi
    sleep 0.1
done
grep -h '"action":"slack.alert.sent"' "$DATA_DIR"/audit/audit-*.jsonl | grep "$key" | tail -n 1 |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["detail"]["message"]["text"])'

echo
echo "# hookbridge audit verify"
"$bin" audit verify
