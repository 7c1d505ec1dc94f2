#!/usr/bin/env bash
# Install headless Chromium and its driver for the browser tests when they are
# missing (Debian packages; needs root). Elsewhere the browser tests skip and
# say why.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing chromium and chromium-driver (Debian packages) for the browser tests"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "chromium/chromedriver not found and cannot be installed here: browser tests will be skipped"
fi
