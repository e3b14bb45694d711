#!/usr/bin/env bash
# The HTML report is tested in headless Chromium. On CI (CI=true) install Debian's chromium when it
# is missing; elsewhere only say how, so `make test` never changes a developer's system unasked.
set -euo pipefail
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then exit 0; fi
done
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the HTML report test (CI only)" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "note: chromium not found; the headless-browser test of the HTML report will be skipped" >&2
  echo "      (Debian/Ubuntu: sudo apt-get install chromium)" >&2
fi
