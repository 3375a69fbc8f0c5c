#!/usr/bin/env bash
# The test command: set-up, then lint + format check + typecheck/build + every test on real data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
