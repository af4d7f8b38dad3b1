#!/usr/bin/env bash
# Set up (system packages, release build, default model) and run parlor.
#
#   scripts/run.sh            the terminal chat with the default persona and model
#   scripts/run.sh ARGS...    any parlor command, e.g. `scripts/run.sh ask "hello"`
#
# Home (bots/, personas/, storage/) is this checkout unless --home or PARLOR_HOME says otherwise.
set -euo pipefail
# shellcheck source=setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

check_rust
install_system_packages
build release
export PARLOR_HOME="${PARLOR_HOME:-$PARLOR_ROOT}"
fetch_default_model "$PARLOR_ROOT/target/release/parlor" "$PARLOR_HOME"
exec "$PARLOR_ROOT/target/release/parlor" "$@"
