#!/usr/bin/env bash
# Creates a Python virtual environment for the interop tests. Dev/CI only: acdc never needs Python.
#   numpy + metatensor-core  test/interop.test.ts (they read what acdc writes and the reverse)
#   ase                      test/cli_fit.test.ts, test/ipi.test.ts (ASE reads acdc's extxyz; SocketIOCalculator)
#   ipi                      test/ipi.test.ts (the real i-PI MD server)
#   chemiscope               test/chemiscope.test.ts, test/cli_map.test.ts (create_input and the viewer's validator)
#   bash scripts/ci/interop-python.sh DIR   →   DIR/bin/python
set -euo pipefail
venv="${1:?usage: interop-python.sh DIR}"
check='import metatensor, numpy, ase, ipi, chemiscope'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  # a bare Debian machine: python3 without venv/ensurepip
  sudo_cmd=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
"${pip[@]}" numpy==2.4.6 metatensor-core==0.2.6 || "${pip[@]}" numpy metatensor-core==0.2.6
"${pip[@]}" ase==3.29.0 ipi==3.3.1 chemiscope==1.1.0
"$venv/bin/python" -c "$check"'; print("interop python: metatensor", metatensor.__version__, "numpy", numpy.__version__, "ase", ase.__version__, "chemiscope", chemiscope.__version__)'
