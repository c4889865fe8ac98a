#!/usr/bin/env bash
# sllen-bench on a CUDA GPU (called by scripts/gpu-check.sh; runs alone too, from the repo root):
#   bash scripts/gpu/bench_gpu.sh            results in $OUT/bench (default /tmp/sllen-gpu/bench)
# The bundled model on the PyTorch backend, FP32 and FP16 (autocast), each with the project's
# attention kernel (--attention kernel) and with torch's SDPA, at 640x360, 1280x720 and
# 1920x1080, side by side in one run (sizes and configurations timed in turn); then the
# per-layer profile (torch.profiler, GPU self time) at 1280x720. Rows whose kernel library is
# not built show "cannot open" with the reason instead of numbers. Timings use CUDA events.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/sllen-gpu}/bench
mkdir -p "$OUT"
if [ -z "${SLLEN_ATTENTION_LIB:-}" ] && [ -f build/libsllen_attention.so ]; then
  export SLLEN_ATTENTION_LIB="$PWD/build/libsllen_attention.so"  # built by gpu-check.sh step 5
fi
BENCH=("${PY:-python3}" -m sllen.cli.bench --device cuda --backend pytorch --precision fp32 --precision fp16
       --attention kernel --attention sdpa)
"${BENCH[@]}" --resolution 640x360 --resolution 1280x720 --resolution 1920x1080 \
  --warmup 10 --iterations 100 --duration 20 --interleave \
  --json "$OUT/bench.json" --plot "$OUT/bench.png" 2>&1 | tee "$OUT/bench.txt"
"${BENCH[@]}" --resolution 1280x720 --warmup 5 --iterations 20 --layers --top-k 15 \
  --json "$OUT/layers.json" 2>&1 | tee "$OUT/layers.txt"
echo "sllen-bench results in $OUT (paste bench.txt's table into docs/performance.md)"
