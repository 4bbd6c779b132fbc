#!/usr/bin/env bash
# The GPU check behind docs/BENCHMARKS.md "GPU": memdiff --device wgpu (burn-cubecl with autotune
# and fusion) against PyTorch CUDA on one NVIDIA GPU, in one call of about 8 minutes:
#   training step px 8 and px 32 (batch 128, base 64), sampling px 16 (n 10, 100 steps), and a
#   sweep of 32 small trainings (bench/concurrent.toml) with --jobs K against one at a time.
#
# Three modes, all from the repository root:
#   crates/diffusion/bench/gpu_check.sh --prepare   on the build machine (no GPU needed): builds
#       the memdiff binary with --features wgpu and puts it, stripped, with torch_ref.py and
#       torch_cuda.py into .gpu/; downloads the Vulkan loader packages into .gl/ (apt-get
#       download, needs the network); both folders are added to .git/info/exclude.
#   crates/diffusion/bench/gpu_check.sh             on the GPU machine (the device tool: carry
#       [".gpu", ".gl"], timeout_s 600). Results: $OUT/gpu_check.jsonl (one JSON line per step)
#       and $OUT/gpu_check.log.
#   crates/diffusion/bench/gpu_check.sh --dry-run   prints the steps without running anything.
#
# The GPU machine has no Rust toolchain as far as this project has seen; where `cargo` is there and
# no binary was carried, the script builds one (`--bin memdiff` only; several minutes cold, out of
# the budget). The torch half is optional: skipped, and said so, without python3 + torch + CUDA or
# without torch_ref.py.
# Settings (environment): BUDGET_S (default 470: seconds for all steps; a step that would start
# with less than 20 s left is skipped), MEMDIFF_BIN (default .gpu/memdiff), TORCH_DIR (the folder
# holding torch_ref.py; default .gpu, then ../shared/bench), JOBS (the K of the many-trainings
# sweeps, default "8 32 128"), OUT (default
# /tmp/gpu-check).
set -u
cd "$(dirname "$0")/../../.."
HERE=crates/diffusion/bench
MODE=${1:-run}

if [ "$MODE" = "--prepare" ]; then
    set -e
    mkdir -p .gpu .gl
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >>.git/info/exclude
    grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >>.git/info/exclude
    cargo build --release --bin memdiff --features wgpu
    strip -o .gpu/memdiff "${CARGO_TARGET_DIR:-target}/release/memdiff"
    cp "$HERE/torch_cuda.py" .gpu/
    cp ../shared/bench/torch_ref.py .gpu/ 2>/dev/null || echo "no ../shared/bench/torch_ref.py: the torch half will be skipped"
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    mkdir -p /tmp/amd64/partial
    # shellcheck disable=SC2086
    { apt-get $o update >/dev/null && (cd .gl && apt-get $o download libvulkan1); } ||
        echo "could not download libvulkan1: carry .gl only if the GPU machine lacks libvulkan"
    du -sh .gpu .gl
    exit 0
fi

DRY=0
[ "$MODE" = "--dry-run" ] && DRY=1
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
JSONL=$OUT/gpu_check.jsonl
: >"$LOG"
: >"$JSONL"
BUDGET_S=${BUDGET_S:-470}
JOBS=${JOBS:-8 32 128}
BIN=${MEMDIFF_BIN:-.gpu/memdiff}
START=$(date +%s)
WORK=$(mktemp -d /tmp/gpu-check-work.XXXX)
left() { echo $((BUDGET_S - ($(date +%s) - START))); }
say() { echo "$*" | tee -a "$LOG"; }

# run NAME TIMEOUT CMD...: one step, cut at min(TIMEOUT, what is left); its stdout's last JSON
# line (if any) and wall time go to $JSONL, everything to $LOG.
run() {
    local name=$1 t=$2
    shift 2
    local l
    l=$(left)
    [ "$t" -gt "$l" ] && t=$l
    if [ "$DRY" = 1 ]; then
        say "== $name (timeout ${t}s): $*"
        return 0
    fi
    if [ "$t" -lt 20 ]; then
        say "== $name: skipped, ${l}s of the budget left"
        echo "{\"step\":\"$name\",\"skipped\":\"budget\"}" >>"$JSONL"
        return 0
    fi
    say "== $name [$(date +%T), timeout ${t}s]: $*"
    local t0 t1 rc json
    t0=$(date +%s%N)
    timeout "$t" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    rc=$?
    t1=$(date +%s%N)
    grep -v '^\s*$' "$WORK/stderr" | tail -"${TAILN:-4}" | tee -a "$LOG"
    tee -a "$LOG" <"$WORK/stdout" | tail -3
    json=$(grep '^{' "$WORK/stdout" | tail -1)
    [ -z "$json" ] && json=null
    printf '{"step":"%s","rc":%d,"wall_ms":%d,"out":%s}\n' "$name" "$rc" \
        $(((t1 - t0) / 1000000)) "$json" >>"$JSONL"
    return 0
}

# --- the machine -----------------------------------------------------------------------------
if [ "$DRY" = 0 ]; then
    # The Vulkan loader, where it is missing (docs of the device tool).
    if ! ldconfig -p 2>/dev/null | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
        ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$LOG"
    say "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    say "libvulkan: $(ldconfig -p 2>/dev/null | grep -c libvulkan) entries; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
fi

# --- the binary ------------------------------------------------------------------------------
if [ ! -x "$BIN" ]; then
    if command -v cargo >/dev/null; then
        run build 400 cargo build --release --offline --bin memdiff --features wgpu
        BIN=${CARGO_TARGET_DIR:-target}/release/memdiff
    elif [ "$DRY" = 0 ]; then
        say "no memdiff binary at $BIN and no cargo here: run '$0 --prepare' on the build machine and carry .gpu"
        exit 2
    fi
fi
[ "$DRY" = 0 ] && say "memdiff: $BIN, $(stat -c '%s bytes, %y' "$BIN")"

# --- torch (optional) ------------------------------------------------------------------------
TORCH=0
TORCH_DIR=${TORCH_DIR:-}
if [ -z "$TORCH_DIR" ]; then
    for d in .gpu ../shared/bench; do
        [ -f "$d/torch_ref.py" ] && TORCH_DIR=$d && break
    done
fi
if [ -n "$TORCH_DIR" ] && [ -f "$TORCH_DIR/torch_ref.py" ]; then
    if [ "$DRY" = 1 ] || python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>>"$LOG"; then
        TORCH=1
    else
        say "torch half skipped: python3 has no torch with CUDA"
    fi
else
    say "torch half skipped: no torch_ref.py (TORCH_DIR, .gpu/ or ../shared/bench/)"
fi
torch() {
    # torch NAME TIMEOUT ARGS...: torch_cuda.py with torch_ref.py importable
    local name=$1 t=$2
    shift 2
    if [ "$TORCH" = 1 ]; then
        PYTHONPATH="$TORCH_DIR${PYTHONPATH:+:$PYTHONPATH}" run "$name" "$t" python3 "$HERE/torch_cuda.py" "$@"
    else
        echo "{\"step\":\"$name\",\"skipped\":\"no torch\"}" >>"$JSONL"
    fi
}

# --- the measurements, most wanted first -------------------------------------------------------
# The first steps of each shape run burn-cubecl's autotune (kept on disk for later runs), hence
# the warm-up steps.
TAILN=4 run train-px8 100 "$BIN" bench train --px 8 --batch 128 --base-channels 64 --steps 10 --warmup 5 --device wgpu --step-times
torch torch-train-px8 40 train 8 128 20 5
# Many small trainings: one at a time (the first units, same cost each) against K at once, for
# each K in $JOBS.
SW=$HERE/concurrent.toml
TAILN=2 run sweep-jobs1 90 "$BIN" sweep --config "$SW" --out "$WORK/j1" --device wgpu --jobs 1 --max-units 6 --no-report
for J in $JOBS; do
    # K networks at once (batched ensembles of up to K): enough units to fill K.
    SWJ="$WORK/concurrent-$J.toml"
    sims=$(sed -n 's/^sims = //p' "$SW")
    [ "$sims" -lt "$J" ] && sims=$J
    sed "s/^sims = .*/sims = $sims/" "$SW" >"$SWJ"
    TAILN=2 run "sweep-jobs$J" 110 "$BIN" sweep --config "$SWJ" --out "$WORK/j$J" --device wgpu --jobs "$J" --no-report
    if [ "$DRY" = 0 ] && [ -f "$WORK/j1/results.csv" ] && [ -f "$WORK/j$J/results.csv" ]; then
        # The same units must give the same rows (train_seconds, column 24, left out).
        cut -d, -f1-23,25- "$WORK/j1/results.csv" >"$WORK/a"
        cut -d, -f1-23,25- "$WORK/j$J/results.csv" | head -"$(wc -l <"$WORK/a")" >"$WORK/b"
        if cmp -s "$WORK/a" "$WORK/b"; then same=true; else same=false; fi
        say "sweep: the $(($(wc -l <"$WORK/a") - 1)) units of the one-at-a-time run have the same rows with --jobs $J: $same"
        echo "{\"step\":\"sweep-same-rows-$J\",\"same\":$same}" >>"$JSONL"
    fi
done
run sample-px16 60 "$BIN" bench sample --px 16 --n 10 --steps 100 --base-channels 64 --device wgpu
torch torch-sample-px16 30 sample 16 10 100
TAILN=4 run train-px32 100 "$BIN" bench train --px 32 --batch 128 --base-channels 64 --steps 5 --warmup 4 --device wgpu --step-times
torch torch-train-px32 40 train 32 128 10 3

# Trainings per hour of each sweep, from its "N computed in X s" line.
grep -o '^sweep: .* computed in [0-9.]* s' "$LOG" | awk -v jobs="1 $JOBS" '{
    split(jobs, ks, " ")
    for (i = 1; i <= NF; i++) if ($i == "computed") { n = $(i - 1); s = $(i + 2) }
    k = ks[NR]
    printf "sweep --jobs %s: %d trainings in %.1f s = %.0f per hour\n", k, n, s, 3600 * n / s
}' | tee -a "$LOG"
say "== done in $(($(date +%s) - START)) s; autotune cache: $(du -sh ~/.cache/cubecl 2>/dev/null | cut -f1)"
[ "$DRY" = 0 ] && cat "$JSONL"
rm -rf "$WORK"
