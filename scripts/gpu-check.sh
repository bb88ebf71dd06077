#!/usr/bin/env bash
# The CUDA checks of altdiff, for a machine with an NVIDIA GPU, the CUDA toolkit (nvcc and the
# CUDA libraries: candle's `cuda` feature compiles its kernels with nvcc) and a Rust toolchain.
# CI has no GPU and never builds the `cuda` feature; run this by hand on such a machine:
#
#   scripts/gpu-check.sh            # from anywhere in the repository
#
# 1. the candle backend's tests on the CPU and on CUDA device 0 (conformance suite included);
# 2. the batch benchmark of the `altdiff` program on CUDA (1024 problems), its output printed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=0
if ! command -v cargo >/dev/null 2>&1; then
    echo "gpu-check: cargo not found: install a Rust toolchain (https://rustup.rs) and put cargo on PATH" >&2
    missing=1
fi
if ! command -v nvcc >/dev/null 2>&1; then
    echo "gpu-check: nvcc not found: the cuda feature needs the CUDA toolkit at build time" >&2
    echo "gpu-check: install it and put its bin/ on PATH (e.g. export PATH=/usr/local/cuda/bin:\$PATH)" >&2
    missing=1
fi
if [ "$missing" -ne 0 ]; then
    exit 1
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
    echo "gpu-check: nvidia-smi not found; continuing (the tests fail if no CUDA device opens)" >&2
fi
echo "gpu-check: $(nvcc --version | tail -n 1)"
echo "gpu-check: $(cargo --version)"

echo "gpu-check: cargo test -p altdiff-candle --features cuda --release"
cargo test -p altdiff-candle --features cuda --release

echo "gpu-check: altdiff batch-bench --device cuda --batch 1024"
cargo run --release -p altdiff-examples --features cuda --bin altdiff -- \
    batch-bench --device cuda --batch 1024

echo "gpu-check: all CUDA checks passed"
