#!/usr/bin/env bash
# The GPU half of benches/RESULTS.md in one call on a lent NVIDIA machine, which builds nothing:
# it runs the release xtask built elsewhere (benches/gpu/pack.sh writes .gpu/xtask.xz and
# .gpu/xtask-vulkan.xz; plain or .gz binaries work too) and the machine's own python3 with PyTorch.
#
#   1. PyTorch's matrix (train, then inference): fp32, fp32 without TF32, bf16 channels-last.
#   2. Burn on wgpu (Vulkan), one process per model and backend, cold (no autotune cache yet),
#      each under a timeout so one slow model cannot eat the others' time. BACKENDS names the
#      backends (default `wgpu`). `vulkan` runs a second binary, .gpu/xtask-vulkan, built with
#      `--features vulkan`: CubeCL's SPIR-V path, which also keeps compiled kernels in
#      target/environment. (That feature turns SPIR-V on for `wgpu` too, so `wgpu` stays on the
#      default binary: WGSL.)
#   3. What time is left: the same models again with the autotune cache that step 2 wrote, to
#      measure the warm-up with a warm cache. CubeCL keeps its autotune results in
#      target/environment (burn's `persistence` feature, on in the trainer); step 2 starts
#      without it.
#
# Vulkan's loader comes from .gl/*.deb (see the device tool's README). Writes under $OUT
# (default target/gpu-bench): log.txt, torch-train.json, torch-infer.json, burn.json, and
# CubeCL's autotune and compilation logs of each pass (autotune-cold.log, …), which
# benches/gpu/autotune_summary.py sums into log.txt: where the warm-up goes.
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
for f in .gpu/*.gz; do [ -f "$f" ] && gunzip -kf "$f"; done
for f in .gpu/*.xz; do [ -f "$f" ] && xz -dkf "$f"; done
XTASK=${XTASK:-.gpu/xtask}
XTASK_VULKAN=${XTASK_VULKAN:-.gpu/xtask-vulkan}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$OUT/log.txt"
log "autotune level: ${CUBECL_AUTOTUNE_LEVEL:-balanced (default)}"
rm -rf target/environment

# What to run, each overridable (an empty list runs nothing of that kind): the models trained cold then warm, the models timed for
# inference, PyTorch's modes, and the per-process limits in seconds.
MODELS=${MODELS:-"resnet50 vgg16 lenet5 resnet18 cifar-resnet20 googlenet"}
WARM_MODELS=${WARM_MODELS-$MODELS}
INFER_MODELS=${INFER_MODELS-resnet50}
TORCH_MODES=${TORCH_MODES-"train infer"}
BACKENDS=${BACKENDS:-wgpu}
COLD_LIMIT=${COLD_LIMIT:-120}
WARM_LIMIT=${WARM_LIMIT:-60}
CASES=$($XTASK bench models --suite gpu --list)
for mode in $TORCH_MODES; do
    log "PyTorch $mode"
    python3 benches/python/torch_bench.py --cases "$CASES" --mode "$mode" --device "${TORCH_DEVICE:-cuda}" \
        --warmup 3 --steps 10 2>>"$OUT/log.txt" | tee -a "$OUT/log.txt" | tail -1 >"$OUT/torch-$mode.json"
done

# Points CubeCL's autotune log (the winner and every candidate's time) and its compilation log
# (one line per kernel compiled) at $OUT for one pass, through a cubecl.toml that CubeCL reads
# from the working directory, and turns on its compiled-kernel cache (used by the SPIR-V path).
cubecl_logs() {
    cat >cubecl.toml <<TOML
[compilation]
cache = true

[autotune.logger]
level = "minimal"
file = "$OUT/autotune-$1.log"

[compilation.logger]
level = "basic"
file = "$OUT/compilation-$1.log"
TOML
}

# Runs one model on each of $BACKENDS, each under a timeout no longer than the time left: pass,
# mode, model, limit.
burn_case() {
    local pass=$1 mode=$2 model=$3 limit=$4 backend left binary
    for backend in $BACKENDS; do
        binary=$XTASK
        [ "$backend" = vulkan ] && binary=$XTASK_VULKAN
        left=$((DEADLINE - SECONDS))
        if [ "$left" -lt 15 ]; then
            log "no time left for $pass $mode $model on $backend"
            return
        fi
        [ "$limit" -gt "$left" ] && limit=$left
        log "$backend $pass $mode $model (limit ${limit}s)"
        timeout "$limit" "$binary" bench models --suite gpu --models "$model" --backends "$backend" \
            --mode "$mode" --warmup 3 --steps 10 --torch-json "$OUT/torch-$mode.json" \
            --json "$OUT/rows/$pass-$mode-$model-$backend.json" >>"$OUT/log.txt" 2>&1
        log "exit $? after $backend $pass $mode $model"
    done
}

cubecl_logs cold
for model in $MODELS; do burn_case cold train "$model" "$COLD_LIMIT"; done
for model in $INFER_MODELS; do burn_case cold infer "$model" "$WARM_LIMIT"; done
log "autotune cache after the cold pass: $(du -sh target/environment 2>&1 | cut -f1)"
cubecl_logs warm
for model in $WARM_MODELS; do burn_case warm train "$model" "$WARM_LIMIT"; done
rm -f cubecl.toml
for pass in cold warm; do
    [ -f "$OUT/autotune-$pass.log" ] &&
        python3 benches/gpu/autotune_summary.py "$OUT/autotune-$pass.log" | tee -a "$OUT/log.txt"
    [ -f "$OUT/compilation-$pass.log" ] &&
        log "$pass: $(grep -c 'Compiling kernel' "$OUT/compilation-$pass.log") kernels compiled"
done

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
