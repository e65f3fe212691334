#!/usr/bin/env bash
# The local demo: the gateway on 127.0.0.1:8080 in front of a blue sample
# backend (127.0.0.1:8081) and a green one (127.0.0.1:8082), with the admin
# API on 127.0.0.1:9090 (deploy/examples/gateway.yaml). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --workspace --bins --locked
bin=target/debug
work=$(mktemp -d)
export GATEWAY_ADMIN_TOKEN=${GATEWAY_ADMIN_TOKEN:-demo-token}
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

"$bin/sample-backend" --listen 127.0.0.1:8081 --name blue &
"$bin/sample-backend" --listen 127.0.0.1:8082 --name green &
sed "s|gateway-state.json|$work/gateway-state.json|" deploy/examples/gateway.yaml >"$work/gateway.yaml"
"$bin/gateway" --config "$work/gateway.yaml" &

cat <<MSG

Demo running. Try:
  curl -s localhost:8080/                      # blue (split is 0)
  curl -s -X PUT localhost:9090/v1/routes/web/split \\
       -H "Authorization: Bearer $GATEWAY_ADMIN_TOKEN" -d '{"green_percent": 50}'
  for i in \$(seq 20); do curl -s localhost:8080/; done | sort | uniq -c   # new client each time
  curl -s -H 'x-cutover-color: green' localhost:8080/echo   # pinned to green
  curl -s localhost:9090/v1/state
  curl -s localhost:9090/metrics | grep gateway_requests_total
Ctrl-C to stop.
MSG
wait
