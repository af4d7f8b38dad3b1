#!/usr/bin/env bash
# Set up (system packages, debug build, default model) and run every check and test:
# `cargo fmt --check`, `cargo clippy -D warnings`, then the unit tests and the one integration
# test binary. Ends with a summary; exit 0 when all pass, 1 when a check or test failed,
# 2 when the set-up failed.
#
#   scripts/test.sh                 everything
#   scripts/test.sh FILTER...       extra arguments go to `cargo test` (e.g. `models::`)
#
# Doc tests are not run: each would link llama.cpp into its own binary (minutes on 2 cores).
# PARLOR_TEST_THREADS sets the test threads (default 2: the machine this is tuned for has 2
# cores, and real-model tests each keep llama.cpp busy on them).
set -euo pipefail
# shellcheck source=setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$PARLOR_ROOT"

started=$(date +%s)
check_rust
install_system_packages
# The debug build is shared with clippy and the tests (same profile): llama.cpp compiles once.
# `--all-targets` builds the test binaries with it, with the dev-dependencies' features (tokio's
# test-util) unified: built without, `cargo test` recompiled tokio, hyper, reqwest, axum,
# teloxide and parlor (4.5 min of CI).
build debug --all-targets
fetch_default_model "$PARLOR_ROOT/target/debug/parlor" "$PARLOR_ROOT"
fetch_embedding_model "$PARLOR_ROOT/target/debug/parlor" "$PARLOR_ROOT" \
    "$PARLOR_SMALL_EMBEDDING_MODEL" "$PARLOR_SMALL_EMBEDDING_MODEL_FILE" "about 83 MB"
export PARLOR_TEST_MODEL="$PARLOR_ROOT/storage/models/$PARLOR_DEFAULT_MODEL_FILE"
export PARLOR_TEST_EMBEDDING_MODEL="$PARLOR_ROOT/storage/models/$PARLOR_EMBEDDING_MODEL_FILE"
export PARLOR_TEST_SMALL_EMBEDDING_MODEL="$PARLOR_ROOT/storage/models/$PARLOR_SMALL_EMBEDDING_MODEL_FILE"
setup_secs=$(($(date +%s) - started))

results=()
failed=0
# step NAME COMMAND...: run, time and record one check without stopping at the first failure.
step() {
    local name="$1"
    shift
    local t0 rc
    t0=$(date +%s)
    printf '\n[test] == %s: %s\n' "$name" "$*"
    set +e
    "$@"
    rc=$?
    set -e
    local secs=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        results+=("$(printf 'ok      %-8s %4ss' "$name" "$secs")")
    else
        results+=("$(printf 'FAILED  %-8s %4ss  (exit %s)' "$name" "$secs" "$rc")")
        failed=1
    fi
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --all-targets -- -D warnings
step test cargo test --lib --bins --tests -- --test-threads="${PARLOR_TEST_THREADS:-2}" "$@"

printf '\n[test] == summary (set-up %ss, total %ss)\n' "$setup_secs" "$(($(date +%s) - started))"
printf '  %s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
    printf '[test] some checks failed\n'
    exit 1
fi
printf '[test] all checks passed\n'
