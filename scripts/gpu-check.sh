#!/usr/bin/env bash
# Every GPU check of sllen in one call, for a session that has the GPU machine (device tool):
#   run: bash scripts/gpu-check.sh        (results in $OUT, default /tmp/sllen-gpu)
# The GPU machine has torch, CUDA, onnx and onnxruntime but no package index and no TensorRT:
# sllen is used from the source tree; missing pure-Python wheels (typer, rich, safetensors,
# onnxslim, onnxscript) can be carried in shared/wheels/ and are installed from there.
# What it checks today (the kernel and the runtime add theirs with their issues):
#   1. the test suite's GPU-independent parts still pass on that machine's torch;
#   2. training on CUDA with mixed precision (bf16/fp16 autocast) for a few steps;
#   3. the bundled model on CUDA: FP32 vs FP16 output difference and latency (CUDA events)
#      at 640x368, 1280x720 and 1920x1088;
#   4. the TensorRT tests (they skip with a reason where TensorRT is missing);
#   5. the attention kernel: CMake build, ctest, scripts/gpu/attention_bench.py;
#   6. sllen-bench on the GPU (PyTorch FP32/FP16, kernel vs SDPA);
#   7. the runtime on CUDA: the PyTorch backend's tests, and sllen-run on the sample clip
#      (FP16, with the kernel and with SDPA) with its per-stage timing summary.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/sllen-gpu}
mkdir -p "$OUT"
if [ -d shared/wheels ]; then
  python -m pip install -q --no-index --find-links shared/wheels typer rich safetensors \
    onnxslim onnxscript 2>&1 | tail -2
fi
python -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"

python - <<'PY' 2>&1 | tee "$OUT/checks.txt"
import time

import torch

from sllen.model.io import load_weights
from sllen.train.config import TrainConfig
from sllen.train.trainer import train
from sllen.weights import default_weights

assert torch.cuda.is_available(), "no CUDA GPU visible"
print("torch", torch.__version__, "GPU", torch.cuda.get_device_name(0))

t = time.time()
r = train(TrainConfig(out="/tmp/sllen-gpu/train", preset="edge", steps=30, val_every=30,
                      save_every=30, device="cuda"), quiet=True)
print(f"train edge 30 steps on cuda (amp): {time.time() - t:.1f} s, val PSNR {r.val_psnr:.2f}")

model = load_weights(default_weights(), device="cuda")
for h, w in [(368, 640), (720, 1280), (1088, 1920)]:
    x = torch.rand(1, 3, h, w, device="cuda") * 0.2
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cuda", dtype=torch.float16):
            half = model(x).float()
        for _ in range(3):
            model(x)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = {}
        for name, ctx in [("fp32", torch.autocast("cuda", enabled=False)),
                          ("fp16", torch.autocast("cuda", dtype=torch.float16))]:
            with ctx:
                start.record()
                for _ in range(20):
                    model(x)
                end.record()
                torch.cuda.synchronize()
            times[name] = start.elapsed_time(end) / 20
    diff = (ref - half).abs().max().item()
    print(f"{w}x{h}: fp32 {times['fp32']:.2f} ms, fp16 autocast {times['fp16']:.2f} ms, "
          f"max |fp32 - fp16| {diff:.2e}, peak mem {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
PY

python -m pytest -q -p no:cacheprovider tests/model tests/export/trt tests/runtime/test_env.py \
  tests/train/test_trainer.py 2>&1 | tail -5 | tee "$OUT/pytest.txt"

# 5. The attention kernel: build runtime/csrc for this GPU, run ctest (the kernels
#    against the CPU reference on the GPU, and on the CPU emulator), then
#    scripts/gpu/attention_bench.py: correctness vs a float64 reference and torch SDPA, time and
#    peak memory vs every SDPA backend and the naive MatMul-Softmax-MatMul, 1k/8k/32k tokens,
#    head 64 and 512, FP32 and FP16 (table in attention.txt, numbers in attention_bench.json).
{
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
  cc=${cc:-80}
  if command -v cmake >/dev/null; then
    cmake -S . -B build -DCMAKE_CUDA_ARCHITECTURES="$cc" 2>&1 | grep -E "sllen|Error|error" || true
    cmake --build build -j "$(nproc)" 2>&1 | grep -E "error|warning|Built target" || true
    ctest --test-dir build --output-on-failure 2>&1 | tail -n 40
  else  # no CMake on the machine: the same two targets with nvcc alone
    echo "cmake not found: building with nvcc directly"
    mkdir -p build
    nvcc -O3 -std=c++17 -arch="sm_$cc" -Xcompiler -fPIC,-fvisibility=hidden -shared \
      runtime/csrc/attention.cu -o build/libsllen_attention.so
    nvcc -O2 -std=c++17 -arch="sm_$cc" -Iruntime/csrc -Iruntime/csrc/tests \
      runtime/csrc/tests/test_attention_gpu.cu -Lbuild -lsllen_attention \
      -Xlinker -rpath,"$PWD/build" -o build/sllen_attention_gpu_test
    build/sllen_attention_gpu_test | tail -n 40
  fi
  SLLEN_ATTENTION_LIB="$PWD/build/libsllen_attention.so" OUT="$OUT" \
    python scripts/gpu/attention_bench.py
  SLLEN_ATTENTION_LIB="$PWD/build/libsllen_attention.so" python -m pytest -q -p no:cacheprovider \
    tests/runtime/test_attention_kernel.py 2>&1 | tail -3
} 2>&1 | tee "$OUT/attention.txt"

OUT="$OUT" bash scripts/gpu/bench_gpu.sh  # 6. sllen-bench: PyTorch FP32/FP16, kernel vs SDPA
# 7. The runtime on the GPU: backend tests that need CUDA, then the whole video
#    pipeline with the PyTorch backend (end-to-end fps next to the per-stage split).
{
  SLLEN_ATTENTION_LIB="$PWD/build/libsllen_attention.so" python -m pytest -q -p no:cacheprovider \
    tests/runtime/test_backends.py tests/runtime/test_run.py tests/cli/test_run_cli.py 2>&1 | tail -3
  for attn in sdpa kernel; do
    SLLEN_ATTENTION_LIB="$PWD/build/libsllen_attention.so" python -m sllen.cli.run \
      sllen/samples/dark-pan.mp4 --backend pytorch --device cuda --attention "$attn" \
      -o "$OUT/run-$attn" 2>&1 | tail -8
  done
} 2>&1 | tee "$OUT/runtime.txt"
echo "results in $OUT"
