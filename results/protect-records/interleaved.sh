#!/usr/bin/env bash
# protect of CIFAR-10 (CLI, default: the record path) against the general path (library call with
# copyRecords: false, same job otherwise), alternated; wall/user/sys seconds from /usr/bin/time.
# Run from the repository root after `npm run build`. Output: one line per run.
set -eu
D=${1:-../shared/data/cifar-10-batches-bin}
T=$(mktemp -d)
cat > $T/general.mjs <<JS
const { protect } = await import('$PWD/dist/src/protect/job.js');
await protect({ dataset: 'cifar10', dataDir: process.argv[2], out: process.argv[3], copyRecords: false });
JS
for i in 1 2 3 4 5; do
  rm -rf $T/a $T/b
  /usr/bin/time -f "records %e wall %U user %S sys" node dist/src/cli/main.js protect --dataset cifar10 --data-dir $D --out $T/a > /dev/null
  /usr/bin/time -f "general %e wall %U user %S sys" node $T/general.mjs $D $T/b
  cmp -s $T/a/data_batch_1.bin $T/b/data_batch_1.bin && cmp -s $T/a/manifest.json $T/b/manifest.json || echo "OUTPUTS DIFFER"
done
rm -rf $T
