#!/usr/bin/env bash
# `npm test`'s pretest step: checks the programs some tests talk to, and
# never installs system packages itself (no apt-get, no sudo). What is
# missing is listed with the exact command that installs it, and the step
# fails; `.ci/run` (a fresh CI machine) installs them first with the scripts
# named below.
#   - Python 3 with venv: the interop tests' references (numpy, metatensor-core,
#     ASE, i-PI, chemiscope) go into a venv of their own under
#     node_modules/.cache, made here once with pip (no root), unless
#     ACDC_INTEROP_PYTHON names a Python that has them
#   - redis-server (test/queue.test.ts) and chromium (test/cli_map.test.ts)
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
apt=()
if [ -n "${ACDC_INTEROP_PYTHON:-}" ]; then
  "$ACDC_INTEROP_PYTHON" -c 'import metatensor, numpy, ase, ipi, chemiscope' 2>/dev/null \
    || missing+=("ACDC_INTEROP_PYTHON=$ACDC_INTEROP_PYTHON lacks metatensor-core, numpy, ase, ipi or chemiscope: bash scripts/ci/interop-python.sh DIR, then ACDC_INTEROP_PYTHON=DIR/bin/python")
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  venv=node_modules/.cache/acdc-interop-venv
  if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import metatensor, numpy, ase, ipi, chemiscope' 2>/dev/null; }; then
    echo "pretest: making the interop tests' Python venv in $venv (pip, once; about 500 MB)"
  fi
  bash scripts/ci/interop-python.sh "$venv"
else
  apt+=(python3 python3-venv python3-pip)
  missing+=("python3 with venv and pip (the interop tests' references)")
fi
if ! command -v redis-server >/dev/null 2>&1; then
  apt+=(redis-server)
  missing+=("redis-server (test/queue.test.ts starts its own)")
fi
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ] && [ ! -x /usr/bin/chromium-browser ]; then
  apt+=(chromium)
  missing+=("chromium (test/cli_map.test.ts opens the SVG map in it)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "pretest: npm test needs programs that are not installed:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  if [ ${#apt[@]} -gt 0 ]; then
    echo "install them (Debian/Ubuntu, as root or with sudo): apt-get install -y ${apt[*]}" >&2
    echo "(or run bash scripts/ci/redis.sh, bash scripts/ci/chromium.sh and bash scripts/ci/interop-python.sh DIR, as .ci/run does), then npm test again" >&2
  fi
  exit 1
fi
