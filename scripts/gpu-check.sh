#!/usr/bin/env bash
# Every GPU check of sllen in one call, on a bare GPU box (CUDA, nvcc, PyTorch, ONNX Runtime CPU;
# no PyAV, no TensorRT, no network), e.g. the device tool's machine:
#
#   bash scripts/gpu-check.sh --quick --out DIR     kernel build for this GPU, GPU ctest, the
#                                                   PyTorch backend kernel vs SDPA (1k/8k tokens,
#                                                   FP16 parity, time): about 3 min, at most 5
#   bash scripts/gpu-check.sh --out DIR             + compute-sanitizer racecheck/memcheck, the
#                                                   attention benchmark at 32k, training with
#                                                   AMP, model FP32/FP16, GPU pytest, sllen-bench,
#                                                   sllen-run: at most 9 min
#   bash scripts/gpu-check.sh --dry-run [--quick]   the steps and their timeouts, nothing run
#   options: --arch 90 (compute capability to build for; default: nvidia-smi's, else torch's)
#            --only build,gpu_test (run these steps alone, e.g. a rerun after a fix; a step
#            that needs the library needs build too; the rest are reported SKIP)
#
# Each step runs under its own `timeout` with its whole output in DIR/logs/<step>.log and
# prints one PASS/FAIL/SKIP line; DIR/gpu_check.json holds every step's verdict, time and
# reason (rewritten after each step), next to the steps' own results (attention_bench.json,
# backend_parity.json, ...). Exit code 1 if a step failed.
#
# Missing pure-Python packages and PyAV come from gpu-wheels/ when present (made on a machine
# with network by scripts/fetch-gpu-wheels.sh; the device tool carries it: carry=["gpu-wheels"])
# and are installed with pip --no-index. First run: NVIDIA H200, 2026-12-04 (full mode 220 s;
# docs/attention-kernel.md says what is verified where, docs/performance.md the numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

MODE=full
DRY_RUN=0
OUT=""
ARCH=""
ONLY=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) MODE=quick ;;
    --dry-run) DRY_RUN=1 ;;
    --out) OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --arch) ARCH=$2; shift ;;
    --arch=*) ARCH=${1#--arch=} ;;
    --only) ONLY=$2; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$OUT" ]; then
  if [ "$DRY_RUN" = 1 ]; then OUT=/tmp/sllen-gpu-check; else
    echo "gpu-check.sh: --out DIR is required (where the results go)" >&2; exit 2
  fi
fi
if [ "$DRY_RUN" = 0 ] && ! command -v nvidia-smi >/dev/null 2>&1; then
  # Said first, not as seven FAILs whose reason sits in a log tail.
  echo "gpu-check.sh: no NVIDIA driver here (nvidia-smi not found): run it on a machine with" \
    "an NVIDIA GPU (--dry-run lists the steps anywhere)" >&2
  exit 2
fi
if [ "$DRY_RUN" = 0 ]; then
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
fi
RESULTS_NAME=gpu_check.json
if [ "$MODE" = quick ]; then BUDGET_S=285; else BUDGET_S=530; fi
q() { if [ "$MODE" = quick ]; then echo "$1"; else echo "$2"; fi; }  # quick / full timeout

BUILD=$REPO/build-gpu
LIB=$BUILD/libsllen_attention.so
PY=${PYTHON:-python3}
WHEELS=$REPO/gpu-wheels
export REPO OUT BUILD LIB PY WHEELS MODE ARCH ONLY

# ------------------------------------------------------------------ steps (bash -c, set -e)

step_host() {
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
  nvcc --version
  "$PY" -c 'import sys, sysconfig, platform; print(sys.version); print(sysconfig.get_platform(), platform.machine())'
  "$PY" -m pip --version
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))'
  if command -v compute-sanitizer >/dev/null; then compute-sanitizer --version; else echo "no compute-sanitizer"; fi
  cmake --version
}

step_wheels() {
  if [ ! -d "$WHEELS" ]; then
    echo "no gpu-wheels/ folder (make it with scripts/fetch-gpu-wheels.sh on a machine with network)"
    exit 77
  fi
  ls -l "$WHEELS"
  "$PY" -m pip install --no-index --find-links "$WHEELS" -r "$WHEELS/requirements.txt"
}

step_install() {
  "$PY" -m pip install --no-index --no-deps --no-build-isolation -e "$REPO"
  "$PY" -c 'import sllen, sllen.runtime, sllen.export, sllen.calib; print("sllen", sllen.__version__)'
}

step_build() {
  local cc=$ARCH
  if [ -z "$cc" ]; then
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | sed -n 1p | tr -d '. ')
  fi
  if [ -z "$cc" ]; then
    cc=$("$PY" -c 'import torch; m, n = torch.cuda.get_device_capability(0); print(f"{m}{n}")')
  fi
  echo "building for compute capability $cc"
  cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$cc"
  cmake --build "$BUILD" -j "$(nproc)"
  test -f "$LIB"
}

step_ctest() {  # the CPU-side tests of the build: emulator, skip logic, plugin registry
  ctest --test-dir "$BUILD" --output-on-failure -E attention_kernel_gpu
}

step_gpu_test() {  # the kernels on this GPU against the CPU reference; a skip is a failure here
  local rc=0
  "$BUILD/sllen_attention_gpu_test" || rc=$?
  if [ "$rc" = 77 ]; then echo "the GPU test skipped on the GPU machine: no usable device"; exit 1; fi
  exit "$rc"
}

step_racecheck() {
  if ! command -v compute-sanitizer >/dev/null; then echo "no compute-sanitizer on this machine"; exit 77; fi
  compute-sanitizer --tool racecheck --error-exitcode 1 "$BUILD/sllen_attention_gpu_test" --reduced
}

step_memcheck() {
  if ! command -v compute-sanitizer >/dev/null; then echo "no compute-sanitizer on this machine"; exit 77; fi
  compute-sanitizer --tool memcheck --error-exitcode 1 "$BUILD/sllen_attention_gpu_test" --reduced
}

step_kernel_pytest() {
  SLLEN_ATTENTION_LIB=$LIB "$PY" -m pytest -q -p no:cacheprovider "$REPO/tests/runtime/test_attention_kernel.py"
}

step_attention_bench() {  # kernel vs every SDPA backend: error, time, memory
  if [ "$MODE" = quick ]; then
    set -- --tokens 1024 8192 --head-dims 64 512 --dtypes float16 --min-ms 50 --max-reps 10
  else
    set -- --tokens 1024 8192 32768 --head-dims 64 512 --min-ms 100 --max-reps 10
  fi
  SLLEN_ATTENTION_LIB=$LIB "$PY" "$REPO/scripts/gpu/attention_bench.py" --out "$OUT" "$@"
}

step_backend_parity() {  # the PyTorch backend, kernel vs SDPA, FP16 vs FP32, 1k and 8k tokens
  SLLEN_ATTENTION_LIB=$LIB "$PY" "$REPO/scripts/gpu/backend_parity.py" --out "$OUT"
}

step_model_precision() {  # the bundled model on CUDA: FP32 vs FP16 autocast, latency
  "$PY" - <<'PY'
import torch
from sllen.model.io import load_weights
from sllen.weights import default_weights

model = load_weights(default_weights(), device="cuda")
for h, w in [(368, 640), (720, 1280), (1088, 1920)]:
    x = torch.rand(1, 3, h, w, device="cuda") * 0.2
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cuda", dtype=torch.float16):
            half = model(x).float()
        times = {}
        for name, dtype in (("fp32", None), ("fp16", torch.float16)):
            ctx = torch.autocast("cuda", dtype=dtype) if dtype else torch.autocast("cuda", enabled=False)
            with ctx:
                for _ in range(3):
                    model(x)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(20):
                    model(x)
                end.record()
                torch.cuda.synchronize()
            times[name] = start.elapsed_time(end) / 20
    diff = (ref - half).abs().max().item()
    print(f"{w}x{h}: fp32 {times['fp32']:.2f} ms, fp16 {times['fp16']:.2f} ms, max |fp32 - fp16| {diff:.2e}")
PY
}

step_train_amp() {  # a few training steps on CUDA with mixed precision
  "$PY" - <<PY
import time
from sllen.train.config import TrainConfig
from sllen.train.trainer import train
t = time.time()
r = train(TrainConfig(out="$OUT/train", preset="edge", steps=30, val_every=30, save_every=30,
                      device="cuda"), quiet=True)
print(f"train edge 30 steps on cuda (amp): {time.time() - t:.1f} s, val PSNR {r.val_psnr:.2f}")
t = time.time()  # the refinement in the losses, computed in float32 beside autocast
r = train(TrainConfig(out="$OUT/train-refine", preset="edge", steps=10, val_every=10,
                      save_every=10, device="cuda", refine_in_loss=True), quiet=True)
print(f"train edge 10 steps on cuda (amp, --refine-in-loss): {time.time() - t:.1f} s, "
      f"val PSNR {r.val_psnr:.2f}")
PY
}

step_gpu_pytest() {  # the test suite's parts that use CUDA when it is there
  SLLEN_ATTENTION_LIB=$LIB "$PY" -m pytest -q -p no:cacheprovider "$REPO/tests/model" \
    "$REPO/tests/runtime/test_backends.py" "$REPO/tests/runtime/test_env.py" "$REPO/tests/export/trt"
}

step_bench() {  # sllen-bench on the PyTorch backend: kernel vs SDPA, FP32/FP16, per layer
  if ! "$PY" -c 'import typer, rich' 2>/dev/null; then
    echo "typer/rich are not installed (carry gpu-wheels/, scripts/fetch-gpu-wheels.sh)"; exit 77
  fi
  OUT=$OUT SLLEN_ATTENTION_LIB=$LIB bash "$REPO/scripts/gpu/bench_gpu.sh"
}

step_sllen_run() {  # the video pipeline on the sample clip, kernel and SDPA
  if ! "$PY" -c 'import av, typer, rich' 2>/dev/null; then
    echo "PyAV/typer/rich are not installed (carry gpu-wheels/, scripts/fetch-gpu-wheels.sh)"; exit 77
  fi
  for attn in kernel sdpa; do
    SLLEN_ATTENTION_LIB=$LIB "$PY" -m sllen.cli.run "$REPO/sllen/samples/dark-pan.mp4" \
      --backend pytorch --device cuda --attention "$attn" -o "$OUT/run-$attn" --overwrite  # a rerun into the same --out
  done
}

export -f $(compgen -A function step_)

# ------------------------------------------------------------------ the plan

. "$REPO/scripts/gpu/steps.sh"
steps_begin
run_step host             30               "GPU, driver, nvcc, torch, compute-sanitizer"
run_step wheels           "$(q 60 90)"     "pip install --no-index from gpu-wheels/"
run_step install          60               "pip install -e . (no index, no deps)"
run_step build            "$(q 150 180)"   "CMake build of runtime/csrc for this GPU only"
run_step ctest            60               "ctest without the GPU test (emulator, skip logic)"
run_step gpu_test         90               "the kernels on the GPU vs the CPU reference"
run_step kernel_pytest    60               "tests/runtime/test_attention_kernel.py on CUDA"
run_step backend_parity   "$(q 90 120)"    "PyTorch backend: kernel vs SDPA, FP16 vs FP32, 1k/8k tokens"
run_step attention_bench  "$(q 90 180)"    "kernel vs SDPA backends: error, time, memory"
run_step racecheck        "$(q 0 150)"     "compute-sanitizer racecheck, reduced cases"
run_step memcheck         "$(q 0 90)"      "compute-sanitizer memcheck, reduced cases"
run_step model_precision  "$(q 0 90)"      "bundled model FP32 vs FP16 autocast, latency"
run_step train_amp        "$(q 0 120)"     "30 training steps on CUDA with AMP"
run_step gpu_pytest       "$(q 0 150)"     "pytest: model, backends, env, export/trt"
run_step bench            "$(q 0 150)"     "sllen-bench (PyTorch backend, kernel vs SDPA)"
run_step sllen_run        "$(q 0 90)"      "sllen-run on the sample clip, kernel and SDPA"
steps_end "gpu_arch=${ARCH:-auto}"
