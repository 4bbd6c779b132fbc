#!/bin/bash
# Alternating CPU comparison behind docs/BENCHMARKS.md: torch_ref.py, then memdiff, N times,
# 2 threads each; prints each pair's times and the ratio torch / memdiff (> 1: memdiff faster).
#   crates/diffusion/bench/cpu_pairs.sh N train|sample [MEMDIFF] [PYTHON] [TORCH_REF]
# Prefix with `taskset -c 2,3` (and export RAYON_NUM_THREADS=2) on machines with more cores.
set -eu
N=$1; what=$2
B=${3:-target/release/memdiff}; P=${4:-python3}; R=${5:-../shared/bench/torch_ref.py}
field() { tail -1 | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
for i in $(seq "$N"); do
  if [ "$what" = train ]; then
    t=$($P "$R" train --px 8 --batch 128 --steps 5 --warmup 1 --threads 2 2>/dev/null | field s_per_step)
    m=$("$B" bench train --px 8 --batch 128 --base-channels 64 --steps 5 --warmup 1 2>/dev/null | field s_per_step)
  else
    t=$($P "$R" sample --px 16 --n 10 --steps 40 --threads 2 2>/dev/null | field s_per_net_eval)
    m=$("$B" bench sample --px 16 --n 10 --steps 40 --base-channels 64 2>/dev/null | field s_per_net_eval)
  fi
  echo "$what pair $i: torch $t memdiff $m ratio $(python3 -c "print(round($t / $m, 3))")"
done
