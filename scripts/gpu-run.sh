#!/usr/bin/env bash
# The GPU machine's side of a run (see scripts/gpu-pack.mjs and ../shared/docs/gpu.md): unpacks
# node, the app and the CIFAR-10 subset, then
#   1. bench/gpu.ts for ResNet-18 with each filter-gradient choice, PyTorch CUDA beside it;
#   2. protects the subset with `onepixel protect` (the search runs there, on the subset);
#   3. trains ResNet-18 with --backend webgpu on the clean and the protected subset, as many epochs
#      as fit TRAIN_BUDGET_S each (from the measured speed), one-cycle lr 0.05, batch 128;
#   4. the remaining bench rows if time is left.
# MODE=profile: where a step's GPU time goes, and the quick preset. MODE=em: EM generation time.
# MODE=em-train: EM to its stopping rule, CIFAR-10-S, and the quick preset on each. MODE=long:
# the quick preset for EPOCHS epochs on the OPS and the clean subset.
# Results go to $OUT (or ./gpu-out). Usage: bash scripts/gpu-run.sh [TRAIN_BUDGET_S]
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
BUDGET=${1:-120}
MODEL=${MODEL:-resnet18}   # a rehearsal on a machine without a GPU uses lenet5
STEPS=${STEPS:-10}
start=$SECONDS
log() { echo "[$((SECONDS - start)) s] $*" | tee -a "$OUT/run.log"; }

if [ -d .gpu/gl ] && [ "$(id -u)" -eq 0 ]; then
  for f in .gpu/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=/tmp/xdg
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
NODE=/tmp/onepixel-node
[ -x $NODE ] || { xz -dc .gpu/node.xz > $NODE && chmod +x $NODE; }
APP=/tmp/onepixel-app
DATA=/tmp/onepixel-data
rm -rf $APP $DATA && mkdir -p $APP $DATA
tar -C $APP -xJf .gpu/app.tar.xz
tar -C $DATA -xJf .gpu/c10.tar.xz
n=$(( $(stat -c %s $DATA/c10-clean/data_batch_1.bin) * 5 / 3073 ))   # training images in the subset
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$OUT/run.log"
CLI="$NODE $APP/dist/src/cli/main.js"
log "node $($NODE -v); doctor-ish check"
$NODE -e "import('$APP/dist/src/nn/engine.js').then(async m => { console.log(await m.initEngine('webgpu')); const w = await import('$APP/dist/src/nn/backends/webgpu/index.js'); console.log(JSON.stringify(w.webgpuInfo())); })" 2>&1 | tail -3 | tee -a "$OUT/run.log"

if [ "${MODE:-}" = em ]; then
  # EM generation time on the subset (sample-wise, LeNet-5 surrogate, the defaults otherwise):
  # PyTorch CUDA and onepixel on EM_BACKEND (webgpu; wasm for a rehearsal without a GPU), the same
  # rounds; then onepixel with larger noise-pass batches (fewer, larger GPU dispatches).
  ROUNDS=${ROUNDS:-3}
  log "EM peer: PyTorch ${PEER_DEVICE:-cuda}, $n images, $ROUNDS rounds"
  timeout 90 ${PYTHON:-python3} $APP/bench/peer_em_torch.py --data-dir $DATA/c10-clean --images $n \
    --rounds $ROUNDS --device ${PEER_DEVICE:-cuda} > "$OUT/em-peer.jsonl" 2>> "$OUT/em.log"
  tail -2 "$OUT/em-peer.jsonl" | tee -a "$OUT/run.log"
  log "EM peer to the stopping rule (99 %), at most 40 rounds"
  timeout 90 ${PYTHON:-python3} $APP/bench/peer_em_torch.py --data-dir $DATA/c10-clean --images $n \
    --rounds 40 --device ${PEER_DEVICE:-cuda} > "$OUT/em-peer-stop.jsonl" 2>> "$OUT/em.log"
  tail -2 "$OUT/em-peer-stop.jsonl" | tee -a "$OUT/run.log"
  for nb in 500 ${BIG_BATCH:-2500}; do
    r=$ROUNDS
    [ "$nb" != 500 ] && r=1
    log "EM onepixel ${EM_BACKEND:-webgpu}, noise batch $nb, $r rounds"
    timeout ${EM_TIMEOUT_S:-150} $NODE $APP/dist/bench/em.js --data-dir $DATA/c10-clean \
      --images $n --backend ${EM_BACKEND:-webgpu} --rounds $r --noise-batch $nb \
      > "$OUT/em-$nb.jsonl" 2>> "$OUT/em.log"
    grep -v '"phase"' "$OUT/em-$nb.jsonl" | tee -a "$OUT/run.log"
    grep '"phase"' "$OUT/em-$nb.jsonl" | tail -1 | tee -a "$OUT/run.log"
  done
  log "done"
  exit 0
fi

if [ "${MODE:-}" = em-train ]; then
  # EM on EM_BACKEND to its stopping rule through the CLI (noise batch NB), CIFAR-10-S from that
  # noise, then the quick preset (LeNet-5) on the EM, CIFAR-10-S and clean subsets; the PyTorch
  # peer to the same stopping rule with the same noise batch first.
  NB=${NB:-2500}
  B=${EM_BACKEND:-webgpu}
  log "EM peer to the stopping rule, noise batch $NB"
  timeout 90 ${PYTHON:-python3} $APP/bench/peer_em_torch.py --data-dir $DATA/c10-clean --images $n \
    --rounds 40 --noise-batch $NB --device ${PEER_DEVICE:-cuda} > "$OUT/em-peer-stop-$NB.jsonl"
  tail -1 "$OUT/em-peer-stop-$NB.jsonl" | tee -a "$OUT/run.log"
  log "protect --method em on $B, noise batch $NB, at most ${MAX_ROUNDS:-30} rounds"
  timeout -s INT ${EM_TIMEOUT_S:-240} $CLI protect --method em --dataset cifar10 \
    --data-dir $DATA/c10-clean --out $DATA/c10-em --backend $B --em-noise-batch $NB \
    --max-rounds ${MAX_ROUNDS:-30} --json > "$OUT/em-manifest.json" 2> "$OUT/em-cli.log"
  grep "EM round" "$OUT/em-cli.log" | tail -3 | tee -a "$OUT/run.log"
  $CLI protect --method cifar10s --dataset cifar10 --data-dir $DATA/c10-clean --out $DATA/c10-s \
    --noise $DATA/c10-em/noise.npy --json > "$OUT/s-manifest.json" 2>> "$OUT/em-cli.log"
  for d in em s clean; do
    log "quick preset on $d"
    timeout -s INT ${TRAIN_TIMEOUT_S:-100} $CLI train --data $DATA/c10-$d --preset quick --backend $B \
      --seed 0 --results "$OUT/quick-$d.json" --checkpoint /tmp/ckpt-q-$d 2>&1 | grep -v Warning |
      tail -2 | tee -a "$OUT/run.log"
  done
  log "done"
  exit 0
fi

if [ "${MODE:-}" = long ]; then
  # Protection on the GPU: the quick preset (LeNet-5) for EPOCHS epochs of the subset on the OPS
  # copy and on the clean subset (60 epochs of 10,000 images are about the steps of the full-size
  # quick preset).
  EPOCHS=${EPOCHS:-60}
  $CLI protect --dataset cifar10 --data-dir $DATA/c10-clean --out $DATA/c10-ops --json > "$OUT/ops-manifest.json"
  for d in ops clean; do
    log "quick preset, $EPOCHS epochs, on $d"
    timeout -s INT ${TRAIN_TIMEOUT_S:-170} $CLI train --data $DATA/c10-$d --preset quick --epochs $EPOCHS \
      --backend ${EM_BACKEND:-webgpu} --seed 0 --results "$OUT/long-$d.json" \
      --checkpoint /tmp/ckpt-long-$d 2>&1 | grep -v Warning | tail -2 | tee -a "$OUT/run.log"
  done
  log "done"
  exit 0
fi

if [ "${MODE:-}" = profile ]; then
  # Where a step's GPU time goes (timestamp queries), then the quick preset (LeNet-5, 15 epochs)
  # on the clean and the protected subset.
  log "profile"
  timeout 150 $NODE $APP/dist/bench/gpu.js --only train-resnet18,train-smallcnn --kernels batched,stock \
    --steps 3 --profile --no-peer > "$OUT/profile.jsonl" 2>> "$OUT/bench.log"
  grep -v Warning "$OUT/bench.log" | tail -4
  $CLI protect --dataset cifar10 --data-dir $DATA/c10-clean --out $DATA/c10-ops --json > /dev/null
  for d in ops clean; do
    log "quick preset on $d"
    timeout -s INT 150 $CLI train --data $DATA/c10-$d --preset quick --backend webgpu --seed 0 \
      --results "$OUT/quick-$d.json" --checkpoint /tmp/ckpt-q-$d 2>&1 | grep -v Warning | tail -4 |
      tee -a "$OUT/run.log"
  done
  log "done"
  exit 0
fi

log "bench: $MODEL training step, three kernel choices"
timeout 200 $NODE $APP/dist/bench/gpu.js --only train-$MODEL --kernels batched,splitk,stock --steps $STEPS \
  >> "$OUT/bench.jsonl" 2>> "$OUT/bench.log"
grep -v Warning "$OUT/bench.log" | tail -3
# The fastest filter-gradient choice trains.
best=$(python3 - "$OUT/bench.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r.get("imagesPerSecond")]
best = max(rows, key=lambda r: r["imagesPerSecond"])
print(best["kernels"], int(best["imagesPerSecond"]))
EOF
)
kern=${best% *}
ips=${best#* }
log "fastest: $kern at $ips img/s"

log "protect the subset"
$CLI protect --dataset cifar10 --data-dir $DATA/c10-clean --out $DATA/c10-ops --json > "$OUT/manifest.json"
epochs=$(( BUDGET * ips / n ))
[ $epochs -lt 1 ] && epochs=1
[ $epochs -gt 15 ] && epochs=15
for d in ops clean; do
  log "train $MODEL on $d ($n images) for $epochs epochs, kernels $kern"
  ONEPIXEL_WEBGPU_KERNELS=$kern timeout -s INT $((BUDGET * 2)) $CLI train --data $DATA/c10-$d \
    --model $MODEL --backend webgpu --epochs $epochs --batch-size 128 --lr 0.05 \
    --schedule onecycle --seed 0 --results "$OUT/train-$MODEL-$d.json" \
    --checkpoint /tmp/ckpt-$d 2>&1 | grep -v Warning | tail -3 | tee -a "$OUT/run.log"
done

log "the other bench rows"
timeout 120 $NODE $APP/dist/bench/gpu.js --only train-smallcnn,train-lenet5,inputgrad-resnet18 \
  --kernels $kern --steps $STEPS >> "$OUT/bench.jsonl" 2>> "$OUT/bench.log"
grep -v Warning "$OUT/bench.log" | tail -4
log "done"
