#!/usr/bin/env bash
# Builds, on the CPU machine, what benches/gpu/run.sh runs on a lent GPU machine (which builds
# nothing), stripped and xz-compressed into .gpu/:
#   xtask-cuda.xz    `--features cuda`, built offline with DOCS_RS=1 (trainer/llvm_stubs/README.md):
#                    CUDA through NVRTC, TF32 tensor cores for f32 (23.8 MB on 2026-12-06);
#   xtask.xz         the default features (wgpu compiling its kernels to WGSL), with WGPU=1;
#   xtask-vulkan.xz  `--features vulkan` (CubeCL's SPIR-V path), with VULKAN=1.
# Each is 20-25 MB, so two fit beside the Vulkan loader in the device tool's 64 MiB of carried
# files. The builds share one target directory but differ in features, so each is a long build.
#
#   bash benches/gpu/pack.sh        # then carry .gpu (and .gl for wgpu/vulkan) and run run.sh
set -euo pipefail
target=${CARGO_TARGET_DIR:-target}
mkdir -p .gpu

# Builds the release xtask with the given cargo arguments and packs it as .gpu/<name>.xz.
pack() {
    local name=$1
    shift
    cargo build --release -p xtask "$@"
    strip -o ".gpu/$name" "$target/release/xtask"
    xz -9 -T2 -f ".gpu/$name"
}

[ "${CUDA:-1}" = 1 ] && DOCS_RS=1 pack xtask-cuda --features cuda
[ "${WGPU:-0}" = 1 ] && pack xtask
[ "${VULKAN:-0}" = 1 ] && pack xtask-vulkan --features vulkan
ls -l .gpu
