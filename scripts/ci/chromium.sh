#!/usr/bin/env bash
# Installs Debian's chromium for test/cli_map.test.ts, which opens the SVG
# that `acdc map --svg` draws in headless Chromium (driven by puppeteer-core,
# a dev dependency; puppeteer's own browser download is not used). Dev/CI only.
#   bash scripts/ci/chromium.sh   →   /usr/bin/chromium
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo_cmd=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo_cmd="sudo"; fi
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
chromium --version
