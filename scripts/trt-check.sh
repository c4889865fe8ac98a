#!/usr/bin/env bash
# What only TensorRT can answer, on a machine with TensorRT (10.x or 11.x) and a GPU (a Jetson
# Orin with JetPack 6 included), in one call:
#
#   bash scripts/trt-check.sh --out DIR [--trt-include DIR] [--trt-library FILE]
#   bash scripts/trt-check.sh --dry-run
#
# 1. builds runtime/csrc with CMake for this GPU: both plugin libraries need TensorRT's C++
#    headers (--trt-include; pip's TensorRT has none: take include/ of the same release, e.g.
#    NVIDIA/TensorRT at its tag), the self-registering one also libnvinfer (--trt-library);
# 2. asks each question of scripts/gpu/trt_check.py in its own process, under its own timeout:
#    plugin lookup (static library and through load_library), the plugin in a built and run
#    engine, the engine inspector's real layer listings for the fusion decision, Q/DQ with FP16
#    scales, DLA with strongly typed networks (10.x on Orin), a version-compatible engine
#    carrying the plugin, what the timing cache calls do with a corrupt file;
# 3. the engine against its ONNX file through Polygraphy on the edge model, where torch (for the
#    export) and polygraphy are installed;
# 4. DIR/trt_check.json: the record to keep as test data, with DIR/layers/ (the listings):
#    copy both to tests/export/data/trt_check/<tensorrt>-<gpu>/ (the merge step prints the
#    command); tests/export/trt/test_recorded_trt_check.py reads every folder there.
# One PASS/FAIL/SKIP line per step; the steps' verdicts in DIR/trt_check_steps.json, their whole
# output in DIR/logs/. Exit code 1 if a step failed. Nothing here has run on TensorRT yet: the
# project's development machines have none.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

DRY_RUN=0
OUT=""
TRT_INCLUDE=${TensorRT_INCLUDE_DIR:-}
TRT_LIBRARY=${TensorRT_LIBRARY:-}
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --out) OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --trt-include) TRT_INCLUDE=$2; shift ;;
    --trt-library) TRT_LIBRARY=$2; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "trt-check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$OUT" ]; then
  if [ "$DRY_RUN" = 1 ]; then OUT=/tmp/sllen-trt-check; else
    echo "trt-check.sh: --out DIR is required (where the report goes)" >&2; exit 2
  fi
fi
if [ "$DRY_RUN" = 0 ] && ! "${PYTHON:-python3}" -c "import tensorrt" >/dev/null 2>&1; then
  # every step would fail on its own (and the merge write a record of nulls): say it once
  echo "trt-check.sh: TensorRT's Python package is not importable by ${PYTHON:-python3}" \
    "(pip install tensorrt, or JetPack's python3-libnvinfer): run it on a machine with" \
    "TensorRT and a GPU (--dry-run lists the steps)" >&2
  exit 2
fi
if [ "$DRY_RUN" = 0 ]; then
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
fi
MODE=trt
BUDGET_S=1800
RESULTS_NAME=trt_check_steps.json
BUILD=$REPO/build-trt
PY=${PYTHON:-python3}
PLUGIN=$BUILD/libsllen_attention_plugin.so
DYNAMIC=$BUILD/libsllen_attention_plugin_dynamic.so
export REPO OUT BUILD PY PLUGIN DYNAMIC TRT_INCLUDE TRT_LIBRARY

step_build() {
  local args=(-DCMAKE_BUILD_TYPE=Release)
  local cc
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | sed -n 1p | tr -d '. ') || cc=""
  if [ -n "$cc" ]; then args+=(-DCMAKE_CUDA_ARCHITECTURES="$cc"); fi
  if [ -n "$TRT_INCLUDE" ]; then args+=(-DTensorRT_INCLUDE_DIR="$TRT_INCLUDE"); fi
  if [ -n "$TRT_LIBRARY" ]; then args+=(-DTensorRT_LIBRARY="$TRT_LIBRARY"); fi
  cmake -S "$REPO" -B "$BUILD" "${args[@]}"
  cmake --build "$BUILD" -j "$(nproc)"
  ctest --test-dir "$BUILD" --output-on-failure
  ls -l "$BUILD"/*.so
}

ask() { "$PY" "$REPO/scripts/gpu/trt_check.py" "$1" --out "$OUT" --plugin "$PLUGIN" \
  --dynamic-plugin "$DYNAMIC"; }
step_environment() { ask environment; }
step_plugin_lookup_static() { ask plugin_lookup_static; }
step_plugin_lookup_dynamic() { ask plugin_lookup_dynamic; }
step_plugin_engine() { ask plugin_engine; }
step_fusion_listing() { ask fusion_listing; }
step_fp16_qdq_scales() { ask fp16_qdq_scales; }
step_dla_strongly_typed() { ask dla_strongly_typed; }
step_version_compatible_plugin() { ask version_compatible_plugin; }
step_timing_cache() { ask timing_cache; }

step_model_parity() {  # the edge model: export, engine with --attention auto, Polygraphy parity
  if ! "$PY" -c 'import torch, polygraphy' 2>/dev/null; then
    echo "torch (to export the model) or polygraphy is not installed here"; exit 77
  fi
  local plugin=()
  if [ -f "$PLUGIN" ]; then plugin=(--plugin "$PLUGIN"); fi
  "$PY" -m sllen.cli.export --fp16 --out "$OUT/model" "${plugin[@]}"
  "$PY" -m sllen.export.trt.engine_parity "$OUT/model/sllen.fp16.onnx" \
    "$OUT/model/sllen.fp16.engine" --out "$OUT/model/parity"
}

step_merge() { "$PY" "$REPO/scripts/gpu/trt_check.py" merge --out "$OUT"; }

export -f $(compgen -A function step_) ask

. "$REPO/scripts/gpu/steps.sh"
steps_begin
run_step build                      600 "CMake: kernel, the plugin libraries (with TensorRT's headers), ctest"
run_step environment                 60 "TensorRT, GPU, DLA cores, Polygraphy"
run_step plugin_lookup_static        60 "ctypes-loaded plugin: found as (SllenAttention, 1, sllen)?"
run_step plugin_lookup_dynamic       60 "load_library: which namespace do getCreators' creators get?"
run_step plugin_engine              300 "plugin node parsed, built, run vs the reference"
run_step fusion_listing             600 "inspector listings: FP16 d64/d512, INT8 d64; fused?"
run_step fp16_qdq_scales            300 "Q/DQ with FP16 scales: parsed, built?"
run_step dla_strongly_typed         600 "strongly typed FP16/INT8 convs on DLA 0 with GPU fallback"
run_step version_compatible_plugin  300 "VC engine with the plugin, loaded in a fresh process"
run_step timing_cache                60 "create_timing_cache on a corrupt blob"
run_step model_parity               900 "edge model FP16 engine vs ONNX (Polygraphy)"
run_step merge                       30 "DIR/trt_check.json, the record for tests/export/data"
steps_end
