#!/usr/bin/env bash
# The browser soak (docs/RELIABILITY.md): builds the site, then 2,000 classifications (or
# $1) through the web API in headless Chromium, two models, batch sizes 1-8.
set -euo pipefail
cd "$(dirname "$0")/../.."
web/build.sh
(cd web && npm install --no-audit --no-fund --loglevel=error)
node web/test/soak.mjs tests/fixtures/vit_plain models/samples/ankle-boot-0.png "${1:-2000}"
