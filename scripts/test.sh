#!/usr/bin/env bash
# The project's test command (the README names it; CI runs it): installs the tools the tests talk
# to if they are missing, then runs every crate's unit, property and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace --locked
