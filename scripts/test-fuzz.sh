#!/usr/bin/env bash
# Bounded-time property testing ("fuzzing") of what faces the outside: signature parsing and
# verification, envelope decoding (shared/src/proptests.rs), the worker's event decoding, CR
# records and Markdown → ADF (worker/src/proptests.rs, worker/src/jira/adf/tests.rs).
#
#   scripts/test-fuzz.sh                     # PROPTEST_CASES=10000, at most FUZZ_TIMEOUT=600 s
#   PROPTEST_CASES=100000 FUZZ_TIMEOUT=3600 scripts/test-fuzz.sh
#
# The same properties run in every `cargo test` with a few hundred cases; here each runs with
# PROPTEST_CASES. The test binaries are built first, so only the runs count against FUZZ_TIMEOUT;
# past it the run is stopped and the script fails (lower PROPTEST_CASES). A failure prints the
# minimal failing input proptest shrank it to.
set -euo pipefail

CARGO="${CARGO:-cargo}"
export PROPTEST_CASES="${PROPTEST_CASES:-10000}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-600}"
packages=(-p hookbridge-shared -p hookbridge-worker)

"$CARGO" test "${packages[@]}" --lib --no-run
echo "test-fuzz: PROPTEST_CASES=$PROPTEST_CASES, at most ${FUZZ_TIMEOUT} s"
start=$SECONDS
status=0
timeout --foreground "$FUZZ_TIMEOUT" \
    "$CARGO" test "${packages[@]}" --lib --no-fail-fast -- proptests:: jira::adf::tests:: || status=$?
if [ "$status" -eq 124 ]; then
    echo "test-fuzz: stopped after ${FUZZ_TIMEOUT} s; lower PROPTEST_CASES" >&2
fi
echo "test-fuzz: $((SECONDS - start)) s"
exit "$status"
