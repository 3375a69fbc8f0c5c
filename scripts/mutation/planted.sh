#!/usr/bin/env bash
# The one-line bugs of issue 24 that passed the whole suite, planted one at a time into the
# compiled files (dist/src, never the sources), each followed by the test files named with it;
# the compiled file is restored after each. A planted bug is caught when a listed test file fails:
# the first file is the one written for it, the others the files that missed it before.
#   npm run build && scripts/mutation/planted.sh > results/mutation/planted.log
set -uo pipefail
cd "$(dirname "$0")/../.."
keep="$(mktemp -d)"
trap 'rm -rf "$keep"' EXIT
plant() {
  local name=$1 file=$2 expr=$3
  shift 3
  cp "$file" "$keep/orig.js"
  sed -i "$expr" "$file"
  if cmp -s "$file" "$keep/orig.js"; then
    echo "$name: the plant did not apply to $file"
    return
  fi
  for t in "$@"; do
    echo "$name: $t: $(nice -n 10 node --test --test-concurrency=1 "dist/test/$t.test.js" 2>&1 |
      grep -E '^# (pass|fail)' | tr '\n' ' ')"
  done
  cp "$keep/orig.js" "$file"
}
echo "date: $(date -u +%FT%TZ) commit: $(git rev-parse --short HEAD)"
# (a) the search past 16 pixels: the sort's tie rule, its order, its slice
plant a-tie dist/src/shortcut/search.js 's/|| a - b || 0/|| b - a || 0/' shortcut search
plant a-order dist/src/shortcut/search.js 's/scores\[b\] - scores\[a\] || a - b/scores[a] - scores[b] || a - b/' shortcut search
plant a-slice dist/src/shortcut/search.js 's/return idx.slice(0, k);/return idx.slice(1, k + 1);/' shortcut search
# (b) the flush of the 32-bit partial sums: never, no reset of Σx², of the count, of the cross products
plant b-never dist/src/shortcut/stats.js 's/const FLUSH_EVERY = 65536;/const FLUSH_EVERY = 1e9;/' shortcut search
plant b-no-reset dist/src/shortcut/stats.js 's/^\( *\)this.pSq\[j\] = 0;/\1;/' shortcut search
plant b-rec-never dist/src/shortcut/record-stats.js 's/const FLUSH_EVERY = 65536;/const FLUSH_EVERY = 1e9;/' shortcut record-stats
plant b-rec-count dist/src/shortcut/record-stats.js 's/^\( *\)this.pending\[label\] = 0;/\1;/' shortcut record-stats
plant b-rec-cross dist/src/shortcut/record-stats.js 's/^\( *\)this.pCross\[j\] = 0;/\1;/' shortcut record-stats
# (c) JPEG of one-channel images decoded as sRGB
plant c-gray dist/src/transforms/jpeg.js "s/g.channels === 1 ? 'b-w' : 'srgb'/'srgb'/" jpeg transforms
# (d) no abort check just before the final rename (the second throwIfAborting in writeAtomically)
plant d-abort dist/src/output.js '/await fill(tmp);/{n;s/throwIfAborting();/;/}' output output-safety
# (e) milestones sorted as strings
plant e-sort dist/src/nn/schedule.js 's/.sort((a, b) => a - b)/.sort()/' schedule optim
# (f) the flip probability's default
plant f-flip dist/src/train/augment.js 's/opts.flipProb ?? 0.5/opts.flipProb ?? 0.45/' augment-flip augment
plant f-flip-hi dist/src/train/augment.js 's/opts.flipProb ?? 0.5/opts.flipProb ?? 0.55/' augment-flip augment
