#!/usr/bin/env bash
# The main job on the bundled data: protect CIFAR-10 (read in place from ../shared/data) with the
# One-Pixel Shortcut into out/c10-ops, then inspect the result against its source.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data="${ONEPIXEL_DATA:-../shared/data/cifar-10-batches-bin}"
node dist/src/cli/main.js protect --dataset cifar10 --data-dir "$data" --out out/c10-ops --force
node dist/src/cli/main.js inspect out/c10-ops
