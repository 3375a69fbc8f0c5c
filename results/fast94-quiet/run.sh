#!/bin/bash
# fast94 on the 40,000/10,000 split (out/split40 from `onepixel holdout`), bf16 on both sides
# (the peer: autocast + channels_last), 2 threads, one run at a time, from the repository root.
#   bash bench/results/fast94-quiet/run.sh peer SEED      the PyTorch peer, timed
#   bash bench/results/fast94-quiet/run.sh audit SEEDS DATASETS...   onepixel audit cells, timed
# The onepixel side runs as `onepixel audit` so that its clean cells are the audit's clean cells.
set -u
R=bench/results/fast94-quiet
A=bench/results/audit-fast94
env_start() { { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $1.env; }
env_end() { { date -u; uptime; } >> $1.env; }
case $1 in
peer)
  s=$2; out=$R/peer-bf16-s$s
  [ -f $out.json ] && exit 0
  env_start $out
  cmd="/usr/bin/python3 bench/peer_airbench_torch.py --data ../shared/data/cifar-10-batches-bin --train data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin --test data_batch_5.bin --seed $s --precision bf16 --threads 2 --out $out.json"
  echo "$cmd" > $out.cmd.txt
  /usr/bin/time -v $cmd > $out.log 2> $out.time.txt
  env_end $out ;;
audit)
  seeds=$2; shift 2; prot=$(IFS=,; echo "$*")
  tag=audit-s${seeds//,/}-${prot//,/+}; out=$R/$tag
  env_start $out
  cmd="node dist/src/cli/main.js audit --clean out/split40 ${prot:+--protected $prot} --models airbench94 --preset fast94 --backend native --precision bf16 --seeds $seeds --out $A"
  echo "$cmd" > $out.cmd.txt
  /usr/bin/time -v $cmd > $out.log 2> $out.time.txt
  env_end $out ;;
esac
