#!/usr/bin/env bash
# The gateway against nginx and HAProxy on this machine, one command:
#   tests/bench/run.sh [--rounds N] [--duration SECONDS] [--idle N] [--instructions-only]
# Installs nginx, HAProxy, wrk, h2load and valgrind from Debian when missing, builds the
# gateway (and tests/bench/floor) in release, then runs tests/bench/bench.py (see its docstring).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}" >&2
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's packages start services; the benchmark runs its own instances.
if command -v service >/dev/null; then
  service nginx stop >/dev/null 2>&1 || true
  service haproxy stop >/dev/null 2>&1 || true
fi

# The gateway, and its building blocks alone (tests/bench/floor).
cargo build --release --locked -p gateway -p bench-floor
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 tests/bench/bench.py "$@"
