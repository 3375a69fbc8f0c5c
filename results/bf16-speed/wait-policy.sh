#!/bin/bash
# libgomp's wait policy and LeNet-5 bf16 training steps (batch 128, 2 threads), native beside the
# PyTorch peer (channels_last, bf16 autocast), configurations interleaved, REPS rounds; then the same
# with a busy loop holding one core (LOADED=1). One JSON line per measurement on stdout.
# Run from the repository root after `npm run build`: bash results/bf16-speed/wait-policy.sh
REPS=${REPS:-5}
peer() {
  env "$@" /usr/bin/python3 bench/peer_train_torch.py --model lenet5 --mode train --channels-last \
    --autocast bf16 --batch 128 --warmup 30 --steps 300 --threads 2 2>/dev/null | tail -1 |
    /usr/bin/python3 -c "import json,sys,statistics as s; d=json.load(sys.stdin); print(json.dumps({'side':'peer','imgPerS':round(128/s.median(d['stepSeconds'])),'env':sys.argv[1:]}))" "$@"
}
native() { env "$@" node results/bf16-speed/wait-policy-native.mjs; }
round() { # tag
  for cfg in "OMP_WAIT_POLICY=PASSIVE" "GOMP_SPINCOUNT=30000" "OMP_WAIT_POLICY=ACTIVE"; do
    echo "{\"loaded\":$1,\"cfg\":\"$cfg\",\"peer\":$(peer $cfg),\"native\":$(native $cfg)}"
  done
  echo "{\"loaded\":$1,\"cfg\":\"peer default (unset)\",\"peer\":$(peer X=1)}"
}
lscpu | grep -E 'Model name|CPU family|^Model:' | sed 's/  */ /g' >&2; uptime >&2
for ((r = 0; r < REPS; r++)); do round false; done
sh -c 'while :; do :; done' & hog=$!
for ((r = 0; r < 2; r++)); do round true; done
kill $hog
uptime >&2
