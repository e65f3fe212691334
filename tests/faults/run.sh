#!/usr/bin/env bash
# The fault-injection run: one whole cutover under client load against
# three gateway replicas sharing the Kubernetes store (the fake API server),
# with faults injected at seeded random points; exit 0 only when every
# promise held (tests/faults/main.rs lists them, RESULTS.md has a long run).
#
#   tests/faults/run.sh                        # the short form CI runs: 72 s nominal, under 3 min
#   tests/faults/run.sh --duration 20m --report target/fault-run.json
#   tests/faults/run.sh --seed 42              # the same faults at the same times again
#
# Every flag goes to `fault-run` (`--help` lists them). The journal's disk
# faults need root for a tmpfs; elsewhere they are left out, saying so.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh
cargo build --workspace --bins --locked
exec "${CARGO_TARGET_DIR:-target}/debug/fault-run" "$@"
