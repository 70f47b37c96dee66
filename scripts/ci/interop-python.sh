#!/usr/bin/env bash
# Creates a Python virtual environment with numpy and metatensor-core for the
# interop tests (test/interop.test.ts). Dev/CI only: acdc never needs Python.
#   bash scripts/ci/interop-python.sh DIR   →   DIR/bin/python
set -euo pipefail
venv="${1:?usage: interop-python.sh DIR}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import metatensor, numpy, ase' 2>/dev/null; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  # a bare Debian machine: python3 without venv/ensurepip
  sudo_cmd=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 metatensor-core==0.2.6 \
  || "$venv/bin/pip" install --quiet --disable-pip-version-check numpy metatensor-core==0.2.6
"$venv/bin/python" -c 'import metatensor, numpy; print("interop python:", metatensor.__version__, numpy.__version__)'
# ASE reads the extxyz that `acdc predict --out` writes (test/cli_fit.test.ts)
"$venv/bin/python" -c 'import ase' 2>/dev/null || "$venv/bin/pip" install --quiet --disable-pip-version-check ase==3.29.0
