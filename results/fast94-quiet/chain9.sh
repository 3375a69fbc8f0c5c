#!/bin/bash
cd /work/main
while pgrep -f queue/at2.sh >/dev/null; do sleep 20; done
R=results/fast94-quiet; name=peer-bf16-at2-s0-clean
cmd="/usr/bin/python3 bench/peer_airbench_torch.py --data ../shared/data/cifar-10-batches-bin --train data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin --test data_batch_5.bin --seed 0 --precision bf16 --threads 2 --attack nfgsm --out $R/$name.json"
echo "$cmd" > $R/$name.cmd.txt
{ date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git log --oneline | head -1; } > $R/$name.env
/usr/bin/time -v -o $R/$name.time.txt $cmd > $R/$name.log 2>&1
{ echo "--- after"; date -u; uptime; } >> $R/$name.env
