# hookbridge — the README's commands. Every target works on a fresh machine with only the Rust
# toolchain, Python 3 with pip and Debian's apt: what the tests need is installed and started here.

CARGO ?= cargo
DATA_DIR ?= ./data
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: run demo demo-cr test test-chaos test-fuzz lint lint-infra build release bench clean-test-env

## Build and start one-machine mode (ingest + worker, embedded queue) on 127.0.0.1:8080.
run: release
	DATA_DIR=$(DATA_DIR) scripts/run-local.sh

## Sign and post a sample GitHub issues.opened event to the server `make run` started.
demo:
	@test -f $(DATA_DIR)/dev-webhook-secret || { echo "no $(DATA_DIR)/dev-webhook-secret: start 'make run' first"; exit 2; }
	@test -x $(TARGET_DIR)/release/hookbridge || $(CARGO) build --release --bins
	GITHUB_WEBHOOK_SECRET="$$(cat $(DATA_DIR)/dev-webhook-secret)" $(TARGET_DIR)/release/hookbridge send-test-event

## Post signed Jira webhooks approving CR-2026-0001 to the server `make run` started; show the CR,
## its (dry-run) Slack alert and the audit trail check.
demo-cr:
	@test -x $(TARGET_DIR)/release/hookbridge || $(CARGO) build --release --bins
	DATA_DIR=$(DATA_DIR) scripts/demo-cr.sh

## Property tests of signatures, envelopes, event and CR decoding and Markdown → ADF with many cases
## (PROPTEST_CASES, default 10000), stopped after FUZZ_TIMEOUT seconds (default 600).
test-fuzz:
	CARGO=$(CARGO) scripts/test-fuzz.sh

## Format check, clippy, then every test against a private Redis and moto_server (started and
## stopped by scripts/with-test-services.sh, also on failure).
test: lint build
	scripts/with-test-services.sh $(CARGO) test --workspace --no-fail-fast

## The fault-injection suite alone (also part of `make test`): workers SIGKILLed at random while
## the Jira fake fails and throttles, the ingest SIGKILLed under load with Slack down, SQS frozen
## 30 s, Redis killed and restarted and down 30 s; every effect once, nothing dead-lettered.
test-chaos: build
	scripts/with-test-services.sh $(CARGO) test -p hookbridge-tests --test chaos -- --nocapture

## Rust formatting and clippy, then the GitHub Action and workflow linters (zizmor, actionlint),
## then the deployment material's (see lint-infra).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/lint-actions.sh
	scripts/lint-infra.sh

## infra/ only: checkov and kubernetes-validate (Terraform, Kubernetes, Dockerfile), nginx -t,
## systemd-analyze verify/security.
lint-infra:
	scripts/lint-infra.sh

build:
	$(CARGO) build --workspace --bins

release:
	$(CARGO) build --release --bins

## Benchmarks (release build; installs wrk, the load generator, with apt if missing); figures go
## in the README.
bench: release
	HOOKBRIDGE_NEED_WRK=1 scripts/with-test-services.sh $(CARGO) bench -p hookbridge-tests

clean-test-env:
	rm -rf .test-env
