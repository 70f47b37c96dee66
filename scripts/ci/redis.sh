#!/usr/bin/env bash
# The queue tests (test/queue.test.ts) start their own redis-server on a free
# loopback port: make sure the binary is installed (Debian/Ubuntu package).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  redis-server --version
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
# the tests start their own server: the packaged service is not needed
$SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
redis-server --version
