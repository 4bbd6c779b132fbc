#!/bin/bash
# The device check behind docs/BENCHMARKS.md "GPU": memdiff --device wgpu against torch_cuda.py
# on one NVIDIA GPU. Run from a folder holding torch_ref.py (../shared/bench), torch_cuda.py and
# the memdiff binary built with `cargo build --release --features wgpu` as ./memdiff.
set -u
R() { local t=$1; shift; echo "== $* [$(date +%T)]"; timeout "$t" "$@" 2>&1 | grep -v '^\s*$' | tail -"${TAILN:-3}"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
TAILN=6 R 150 ./memdiff bench train --px 8 --batch 128 --steps 10 --warmup 3 --device wgpu --step-times
R 60 python3 torch_cuda.py train 8 128 20 5
R 100 ./memdiff bench sample --px 16 --n 10 --steps 100 --device wgpu
R 60 python3 torch_cuda.py sample 16 10 100
TAILN=6 R 150 ./memdiff bench train --px 32 --batch 128 --steps 5 --warmup 4 --device wgpu --step-times
R 60 python3 torch_cuda.py train 32 128 10 3
# a user's run end to end: train, sample, audit
R 150 ./memdiff train --data gmm --n 512 --steps 100 --epochs 4 --out /tmp/gpu-run --device wgpu -q
R 60 ./memdiff sample --checkpoint /tmp/gpu-run --n 64 --out /tmp/gpu-run/g.npy --device wgpu -q
TAILN=12 R 120 ./memdiff eval --checkpoint /tmp/gpu-run --generate 32 --device wgpu
ls /tmp/gpu-run
