#!/usr/bin/env bash
# Builds, on the CPU machine, what benches/gpu/run.sh runs on a lent GPU machine (which builds
# nothing): .gpu/xtask.xz, the release xtask with the default features (wgpu compiles its kernels
# to WGSL), and .gpu/xtask-vulkan.xz, built with `--features vulkan` (CubeCL's SPIR-V path;
# VULKAN=0 skips it). Stripped and xz-compressed, each is about 23 MB, so both fit beside the
# Vulkan loader in the device tool's 64 MiB of carried files.
#
#   bash benches/gpu/pack.sh        # then carry .gpu and .gl, and run benches/gpu/run.sh there
set -euo pipefail
target=${CARGO_TARGET_DIR:-target}
rm -rf .gpu && mkdir .gpu

# Builds the release xtask with the given cargo arguments and packs it as .gpu/<name>.xz.
pack() {
    local name=$1
    shift
    cargo build --release -p xtask "$@"
    strip -o ".gpu/$name" "$target/release/xtask"
    xz -9 -T2 -f ".gpu/$name"
}

pack xtask
[ "${VULKAN:-1}" = 1 ] && pack xtask-vulkan --features vulkan
ls -l .gpu
