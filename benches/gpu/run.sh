#!/usr/bin/env bash
# The GPU half of benches/RESULTS.md in one call on a lent NVIDIA machine, which builds nothing:
# it runs the release xtask built elsewhere (benches/gpu/pack.sh writes .gpu/xtask-cuda.xz, and
# on request .gpu/xtask.xz and .gpu/xtask-vulkan.xz; plain or .gz binaries work too) and the
# machine's own python3 with PyTorch.
#
#   1. PyTorch's matrix for the models named (train, then inference): fp32 (its default: TF32
#      convolutions), fp32 without TF32, bf16 autocast channels-last.
#   2. Burn, each model, backend, precision and convolution lowering in its own process, work
#      folder and autotune cache, under a timeout: first cold (empty cache), COLD_JOBS at a
#      time (default 1: tuning processes sharing the GPU starve each other and time their
#      candidates on a busy card), then warm (a second process that finds the cache the first
#      one wrote), one at a time: the warm-cache first step and the tuned steady state.
#      BACKENDS names the backends (default `cuda`, binary .gpu/xtask-cuda: NVRTC, TF32 tensor
#      cores for f32); `wgpu` runs .gpu/xtask (WGSL) and `vulkan` .gpu/xtask-vulkan (SPIR-V).
#      PRECISIONS names the precisions (default `fp32 bf16`: mixed precision, f32 weights, as
#      `train --precision`), CONVS how convolutions are computed (default `native`, the
#      backend's kernels; `gemm`: one matrix product over image patches, `bench models
#      --conv`). CubeCL keeps its autotune results in target/environment (burn's `persistence`
#      feature, on in the trainer).
#
# Caches: every work folder's autotune results (and compiled kernels where CubeCL keeps them)
# go into $OUT/caches.tar.gz; the session keeps that file in the repository as
# benches/gpu/caches/<card>-<driver>.tar.gz (lower case, spaces as dashes, e.g.
# nvidia-h200-580.159.04.tar.gz). When a file for this card and driver is there (or WARM_FROM
# names one), every process starts from it and the cold pass is skipped unless COLD=1: the
# device minutes go to measuring instead of tuning again.
#
# CUDA needs the driver and NVRTC at run time (loaded by cudarc, found through CUDA_PATH,
# default /usr/local/cuda, and LD_LIBRARY_PATH); wgpu and Vulkan need the loader from
# .gl/*.deb (see the device tool's README). Writes under $OUT (default target/gpu-bench):
# log.txt, torch-train.json, torch-infer.json, burn.json, logs.tar.gz (CubeCL's autotune and
# compilation logs of each process, which benches/gpu/autotune_summary.py sums into log.txt:
# where the warm-up goes) and caches.tar.gz.
set -u
OUT=${OUT:-target/gpu-bench}
mkdir -p "$OUT/rows"
OUT=$(cd "$OUT" && pwd)
DEADLINE=$((SECONDS + ${BUDGET_S:-500}))
log() { echo "[+${SECONDS}s] $*" | tee -a "$OUT/log.txt"; }

if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
# Unpacks the carried binaries; Python's lzma where the machine has no xz.
for f in .gpu/*.gz; do [ -f "$f" ] && gunzip -kf "$f"; done
for f in .gpu/*.xz; do
    [ -f "$f" ] || continue
    xz -dkf "$f" 2>/dev/null ||
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[1][:-3], "wb"))' "$f"
    chmod +x "${f%.xz}"
done
XTASK_CUDA=$(realpath -m "${XTASK_CUDA:-.gpu/xtask-cuda}")
XTASK=$(realpath -m "${XTASK:-.gpu/xtask}")
XTASK_VULKAN=$(realpath -m "${XTASK_VULKAN:-.gpu/xtask-vulkan}")
# The binary that runs `bench` and lists the cases: the first one present.
for LISTER in "$XTASK_CUDA" "$XTASK" "$XTASK_VULKAN"; do [ -x "$LISTER" ] && break; done
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
for d in "$CUDA_PATH/lib64" "$CUDA_PATH/targets/x86_64-linux/lib"; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$OUT/log.txt"
CARD=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 |
    tr 'A-Z' 'a-z' | sed 's/, */-/; s/ /-/g')
SHIPPED=benches/gpu/caches/${CARD:-unknown-card}.tar.gz
if [ -z "${WARM_FROM:-}" ] && [ -f "$SHIPPED" ]; then
    WARM_FROM=$SHIPPED
fi
log "card: ${CARD:-none found}; caches: ${WARM_FROM:-none (cold start)}; CUDA_PATH=$CUDA_PATH"
log "autotune level: ${CUBECL_AUTOTUNE_LEVEL:-balanced (default)}"

# What to run, each overridable (an empty list runs nothing of that kind): the models trained
# (cold, then warm), the models timed for inference (warm), PyTorch's modes, and the
# per-process limits in seconds.
MODELS=${MODELS:-"resnet50 vgg16 cifar-resnet20"}
INFER_MODELS=${INFER_MODELS-}
TORCH_MODES=${TORCH_MODES-train}
BACKENDS=${BACKENDS:-cuda}
# Precisions to time (`bench models --precision`): fp32, bf16, fp16.
PRECISIONS=${PRECISIONS:-"fp32 bf16"}
# How convolutions are computed (`bench models --conv`): native, gemm.
CONVS=${CONVS:-native}
COLD_LIMIT=${COLD_LIMIT:-120}
# Most cold processes at once. Each holds its own model, batch and memory pools on the one GPU,
# and its autotuning times candidate kernels on it: eight at once (run 5 in benches/RESULTS.md)
# starved each other, none finishing a step in 150 s, and timed the candidates on a shared GPU.
COLD_JOBS=${COLD_JOBS:-1}
WARM_LIMIT=${WARM_LIMIT:-60}
for mode in $TORCH_MODES; do
    models=$MODELS
    [ "$mode" = infer ] && models=$INFER_MODELS
    [ -z "$models" ] && continue
    cases=$("$LISTER" bench models --suite gpu --models "$(echo $models | tr ' ' ,)" --list)
    log "PyTorch $mode"
    python3 benches/python/torch_bench.py --cases "$cases" --mode "$mode" --device "${TORCH_DEVICE:-cuda}" \
        --warmup 3 --steps 10 2>>"$OUT/log.txt" | tee -a "$OUT/log.txt" | tail -1 >"$OUT/torch-$mode.json"
done

# Each model and backend gets its own work folder holding an empty Cargo.toml, so CubeCL keeps
# its autotune cache (and, on the SPIR-V path, its compiled kernels) in that folder's
# target/environment, apart from the others', and a cubecl.toml that points CubeCL's autotune
# log (the winner and every candidate's time) and compilation log (one line per kernel) at
# $OUT/logs for one process and turns on the compiled-kernel cache.
WORK=/tmp/cnn-zoo-gpu-bench
rm -rf "$WORK"
mkdir -p "$OUT/logs" "$WORK"
if [ "${COLD:-0}" = 1 ]; then
    WARM_FROM=
elif [ -n "${WARM_FROM:-}" ]; then
    tar -C "$WORK" -xzf "$WARM_FROM" && log "caches from $WARM_FROM: $(ls "$WORK" | tr '\n' ' ')"
fi
workdir() {
    local dir=$WORK/$1-$2
    mkdir -p "$dir"
    touch "$dir/Cargo.toml"
    echo "$dir"
}
cubecl_logs() {
    cat >"$1/cubecl.toml" <<TOML
[compilation]
cache = true

[autotune.logger]
level = "minimal"
file = "$OUT/logs/autotune-$2.log"

[compilation.logger]
level = "basic"
file = "$OUT/logs/compilation-$2.log"
TOML
}

# Runs one model on one backend in one precision and convolution lowering in its work folder
# under a timeout no longer than the time left, its output in $OUT/logs/<name>.txt: pass, mode,
# model, backend, precision, conv, limit.
burn_case() {
    local pass=$1 mode=$2 model=$3 backend=$4 precision=$5 conv=$6 limit=$7 left binary=$XTASK dir
    local name=$pass-$mode-$model-$backend-$precision-$conv
    [ "$backend" = vulkan ] && binary=$XTASK_VULKAN
    [ "$backend" = cuda ] && binary=$XTASK_CUDA
    left=$((DEADLINE - SECONDS))
    if [ "$left" -lt 15 ]; then
        log "no time left for $name"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local torch=(--torch-json "$OUT/torch-$mode.json")
    [ -s "$OUT/torch-$mode.json" ] || torch=(--no-torch)
    dir=$(workdir "$model" "$backend-$precision-$conv")
    cubecl_logs "$dir" "$name"
    log "$name (limit ${limit}s)"
    (cd "$dir" && timeout "$limit" "$binary" bench models --suite gpu --models "$model" \
        --backends "$backend" --mode "$mode" --precision "$precision" --conv "$conv" --warmup 3 --steps 10 "${torch[@]}" \
        --json "$OUT/rows/$name.json" >"$OUT/logs/$name.txt" 2>&1)
    log "exit $? after $name"
}

# Cold (skipped when caches were brought, unless COLD=1): COLD_JOBS processes at a time, each
# tuning from an empty cache: the cold first step. Warm: one process at a time, each finding
# the cache its cold run wrote (or the one brought): the warm-cache first step and the steady
# state, measured alone.
for backend in $BACKENDS; do
    [ -n "${WARM_FROM:-}" ] && break
    for precision in $PRECISIONS; do
        for conv in $CONVS; do
            for model in $MODELS; do
                while [ "$(jobs -rp | wc -l)" -ge "$COLD_JOBS" ]; do wait -n; done
                burn_case cold train "$model" "$backend" "$precision" "$conv" "$COLD_LIMIT" &
            done
        done
    done
done
wait
for backend in $BACKENDS; do
    for precision in $PRECISIONS; do
        for conv in $CONVS; do
            for model in $MODELS; do
                log "autotune cache of $model on $backend, $precision, $conv: $(du -sh "$WORK/$model-$backend-$precision-$conv/target/environment" 2>&1 | cut -f1)"
                burn_case warm train "$model" "$backend" "$precision" "$conv" "$WARM_LIMIT"
            done
            for model in $INFER_MODELS; do
                burn_case warm infer "$model" "$backend" "$precision" "$conv" "$WARM_LIMIT"
            done
        done
    done
done
for file in "$OUT"/logs/*.txt; do
    echo "== $(basename "$file" .txt)" >>"$OUT/log.txt"
    cat "$file" >>"$OUT/log.txt"
done
for file in "$OUT"/logs/autotune-*.log; do
    [ -f "$file" ] || continue
    log "$(basename "$file" .log | sed 's/^autotune-//'): $(grep -c 'Compiling kernel' \
        "${file/autotune-/compilation-}" 2>/dev/null) kernels compiled"
    python3 benches/gpu/autotune_summary.py "$file" --top 5 | tee -a "$OUT/log.txt"
done
tar -C "$OUT" -czf "$OUT/logs.tar.gz" logs && rm -rf "$OUT/logs"
(cd "$WORK" && tar -czf "$OUT/caches.tar.gz" */target/environment 2>/dev/null)
log "caches.tar.gz: $(du -h "$OUT/caches.tar.gz" | cut -f1)"

python3 - "$OUT" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(out, "rows", "*.json"))):
    pass_name = os.path.basename(path).split("-")[0]
    for row in json.load(open(path))["rows"]:
        row["pass"] = pass_name
        rows.append(row)
json.dump(rows, open(os.path.join(out, "burn.json"), "w"), indent=1)
print(f"{len(rows)} Burn rows")
EOF
rm -rf "$OUT/rows"
log "done"
