#!/bin/bash
# chain4.sh's rest, ending with issue 22's ResNet-18 bf16/fp32 curves instead of the adversarial
# clean cell (the session's time): after the peer's seed 2, the quiet bench of the 94 % network's
# step (built in the at-peer worktree), the adversarial OPS cell (N-FGSM, seed 0), then ResNet-18
# quick for 4 epochs on the 5,000-image subsets (results/bf16-train.sh's `resnet` step), bf16 and fp32.
set -u
R=results/fast94-quiet
A=results/audit-fast94
base="--clean out/split40 --protected out/split40-ops --models airbench94 --preset fast94 --backend native --precision bf16"
env_before() { { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $1.env; }
env_after() { { date -u; uptime; } >> $1.env; }
cell() {
  local st=$1 seed=$2 ds=$3 tag=$4 sh
  local n=$(node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --list-cells | wc -l)
  sh=$(node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --list-cells --shard 0/$n | grep -q "  ${ds}__" && echo 0/$n || echo 1/$n)
  env_before $R/$tag
  echo "node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --shard $sh" > $R/$tag.cmd.txt
  /usr/bin/time -v node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --shard $sh > $R/$tag.log 2> $R/$tag.time.txt
  env_after $R/$tag
}
while pgrep -f "peer_airbench_torch.py|main.js audit" > /dev/null; do sleep 15; done
B=results/bf16-speed/fast94-$(date -u +%Y%m%dT%H%M)
env_before $B
echo "(cd /work/wt-at && node dist/bench/train.js --only train-airbench94,inputgrad-airbench94 --backends native,native-bf16 --peers nchw,fp32-cl,bf16-cl)" > $B.cmd.txt
(cd /work/wt-at && node dist/bench/train.js --only train-airbench94,inputgrad-airbench94 --backends native,native-bf16 --peers nchw,fp32-cl,bf16-cl) > $B.jsonl 2> $B.stderr.txt
env_after $B
cell at 0 OPS audit-at-s0-ops
for p in bf16 fp32; do
  O=results/bf16-resnet18/$p
  mkdir -p results/bf16-resnet18
  cmd="node dist/src/cli/main.js audit --backend native --clean out/c10-sub5k --protected out/c10-ops-sub5k --models resnet18 --strategies standard --preset quick --epochs 4 --seeds 0 --precision $p --out $O"
  env_before $O-run; echo "$cmd" > $O-run.cmd.txt
  /usr/bin/time -v $cmd > $O-run.log 2> $O-run.time.txt
  env_after $O-run
done
