#!/usr/bin/env bash
# The local demo: a blue and a green sample backend (127.0.0.1:8081/8082),
# the gateway in front (127.0.0.1:8080, admin API 127.0.0.1:9090), client
# load, and deploy/examples/plan.yaml run to 100% with a summary table.
#   scripts/demo.sh                        # a cutover that succeeds
#   scripts/demo.sh --break-green errors   # green fails 20%: automatic rollback
#   scripts/demo.sh --break-green latency  # green answers 800 ms late: rollback
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --workspace --bins --locked
exec target/debug/cutover demo "$@"
