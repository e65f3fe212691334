#!/usr/bin/env bash
# The whole test suite: installs what the build needs, checks formatting and
# lints, builds every binary (the end-to-end tests run the real ones), then
# runs every test and the short fault run.
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP_FOR_TESTS=1 source scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked
# The fault run's short form (CONTRIBUTING.md, "Fault run"), on a fixed seed.
tests/faults/run.sh --seed 2026
