#!/usr/bin/env bash
# `npm test`'s pretest step: the programs some tests talk to. Each script
# returns at once when what it installs is already there.
#   - a Python venv with the reference packages (unless ACDC_INTEROP_PYTHON names one)
#   - redis-server (test/queue.test.ts) and chromium (test/cli_map.test.ts), Debian packages
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${ACDC_INTEROP_PYTHON:-}" ]; then
  bash scripts/ci/interop-python.sh node_modules/.cache/acdc-interop-venv
fi
bash scripts/ci/redis.sh >/dev/null
bash scripts/ci/chromium.sh
