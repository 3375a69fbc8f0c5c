#!/usr/bin/env bash
# Mutation testing of one module with StrykerJS (slow: outside CI and `npm test`).
#
#   scripts/mutation.sh MODULE [FILE...]
#
# MODULE is one of: shortcut transforms output data train pgd schedule. FILE... narrows the
# mutated files to some of the module's (paths under src/), e.g.
#   scripts/mutation.sh shortcut src/shortcut/search.ts
# Each module is mutated against its own test files only, so that a run is affordable. The run is
# niced, one test process at a time; raw reports go to results/mutation/<name>/
# (mutation.json, mutation.html, run.log with the machine and load). docs/mutation.md has the
# scores and the survivors. MUTATION_INCREMENTAL=1 reuses the last report's results for mutants
# whose code and tests did not change. MUTATION_TESTS=dist/test/a.test.js,… runs only those test
# files (a subset of the module's, to make a run affordable; say so next to its score).
set -euo pipefail
cd "$(dirname "$0")/.."
module="${1:?usage: scripts/mutation.sh MODULE [FILE...]}"
shift || true
case "$module" in
  shortcut)
    mutate='src/shortcut/**/*.ts'
    tests='dist/test/shortcut.test.js,dist/test/record-stats.test.js,dist/test/search.test.js' ;;
  transforms)
    mutate='src/transforms/**/*.ts'
    tests='dist/test/jpeg.test.js,dist/test/transforms.test.js,dist/test/projection.test.js' ;;
  output)
    mutate='src/output.ts'
    tests='dist/test/output.test.js' ;;
  data)
    mutate='src/data/**/*.ts'
    tests='dist/test/cifar.test.js,dist/test/cifar-python.test.js,dist/test/idx.test.js,dist/test/npy.test.js,dist/test/folder.test.js' ;;
  train)
    mutate='src/train/**/*.ts'
    tests='dist/test/augment-flip.test.js,dist/test/augment.test.js,dist/test/countermeasures.test.js' ;;
  pgd)
    mutate='src/nn/pgd.ts'
    tests='dist/test/adversarial.test.js' ;;
  schedule)
    mutate='src/nn/schedule.ts'
    tests='dist/test/optim.test.js,dist/test/schedule.test.js' ;;
  *) echo "scripts/mutation.sh: unknown module $module" >&2; exit 1 ;;
esac
name="$module"
if [ $# -gt 0 ]; then
  mutate="$(IFS=,; echo "$*")"
  name="$module-$(basename "${1%%:*}" .ts)$([ $# -gt 1 ] && echo "+$(( $# - 1 ))" || true)"
fi
# MUTATION_TESTS narrows the test files further (comma-separated, from the module's list)
tests="${MUTATION_TESTS:-$tests}"
# keep only the test files that exist (a module's new test file may not be written yet)
kept=()
IFS=, read -ra all <<<"$tests"
for t in "${all[@]}"; do
  src="${t#dist/}"
  [ -f "${src%.js}.ts" ] && kept+=("$t")
done
tests="$(IFS=,; echo "${kept[*]}")"
out="results/mutation/$name"
mkdir -p "$out" out/stryker
# the sandbox is out/stryker/sandbox-*: the tests' ../shared/data must resolve from there
[ -e out/stryker/shared ] || ln -s "$(cd .. && pwd)/shared" out/stryker/shared
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src test || echo ' (+ uncommitted changes)')"
  echo "command: scripts/mutation.sh $module $*"
  echo "mutate: $mutate"
  echo "tests: $tests"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
    "family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')" \
    "model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $(nproc) cores"
  echo "load at start: $(uptime)"
} >"$out/run.log"
MUTATION_NAME="$name" MUTATION_MUTATE="$mutate" MUTATION_TESTS="$tests" \
  nice -n 10 npx stryker run scripts/mutation/stryker.config.mjs 2>&1 | tee -a "$out/run.log"
echo "load at end: $(uptime)" >>"$out/run.log"
