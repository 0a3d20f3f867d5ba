#!/usr/bin/env bash
# Install headless Chromium from Debian's packages for the console's browser tests.
# Idempotent and quick when Chromium is already there. Needs root (or passwordless sudo);
# without it, it says so and exits 1, and the browser tests skip themselves with a message.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "install-browser: /usr/bin/chromium is missing and this user cannot install packages" >&2
  echo "install-browser: the web-console browser tests will be skipped" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no apt-get here; install Chromium at /usr/bin/chromium yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when apt cannot find the package (a fresh machine).
if ! apt-cache show chromium >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get update -q
fi
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core; then
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
fi
test -x /usr/bin/chromium
echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
