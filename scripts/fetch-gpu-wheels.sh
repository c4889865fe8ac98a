#!/usr/bin/env bash
# On a machine WITH network: download the wheels the GPU box lacks into gpu-wheels/ (git-ignored),
# for the box's Python and platform, so scripts/gpu-check.sh can install them there with
# pip --no-index (the box has no package index). The device tool carries the folder
# (carry=["gpu-wheels"], at most 64 MiB with everything else it carries).
#
#   bash scripts/fetch-gpu-wheels.sh --python 3.12 [--platform manylinux_2_28_x86_64] [--out DIR]
#   bash scripts/fetch-gpu-wheels.sh --dry-run ...       print the pip command, download nothing
#   bash scripts/fetch-gpu-wheels.sh --without av ...    leave a package out (repeatable): PyAV
#       is 35 of the folder's ~41 MB and only gpu-check's sllen_run step needs it (that step
#       then reports SKIP), so leaving it out makes room for data the device tool must carry
#
# --python / --platform: the box's (gpu-check.sh's host step prints both: sys.version and
# sysconfig.get_platform()). What is fetched: PyAV and the pure-Python packages sllen needs that
# the box does not have (PACKAGES below), with their dependencies; wheels of packages the box
# already has (BOX_HAS: torch, numpy, onnx, onnxruntime, their dependencies) are dropped again,
# so pip on the box resolves those against what is installed. The folder also gets
# requirements.txt (what gpu-check.sh installs) and the total size is checked against 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

PYVER=3.12
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)
DEST=gpu-wheels
DRY_RUN=0
WITHOUT=()
LIMIT_MIB=60  # leaves room for the rest of what the device tool carries (64 MiB in all)
while [ $# -gt 0 ]; do
  case $1 in
    --python) PYVER=$2; shift ;;
    --platform) PLATFORMS=("$2"); shift ;;
    --out) DEST=$2; shift ;;
    --dry-run) DRY_RUN=1 ;;
    --without) WITHOUT+=("$2"); shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "fetch-gpu-wheels.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# sllen's own needs on the GPU box beyond torch/numpy/onnx/onnxruntime (pyproject's extras):
# PyAV (video), the CLI (typer, rich), weights (safetensors), images (pypng, tifffile), the ONNX
# export (onnxscript, onnxslim), Polygraphy (engine parity, optional) and threadpoolctl (SSIM).
PACKAGES=(av typer rich safetensors pypng tifffile onnxscript onnxslim polygraphy threadpoolctl)
# Distributions the box has (the device tool's description), as wheel-name prefixes.
BOX_HAS=(torch numpy onnx- onnxruntime protobuf typing_extensions packaging sympy mpmath
         networkx jinja2 markupsafe filelock fsspec setuptools triton nvidia_ cupy opencv)

if [ ${#WITHOUT[@]} -gt 0 ]; then
  kept=()
  for p in "${PACKAGES[@]}"; do
    [[ " ${WITHOUT[*]} " == *" $p "* ]] || kept+=("$p")
  done
  for w in "${WITHOUT[@]}"; do
    [[ " ${PACKAGES[*]} " == *" $w "* ]] || { echo "fetch-gpu-wheels.sh: --without $w: not one of ${PACKAGES[*]}" >&2; exit 2; }
  done
  PACKAGES=("${kept[@]}")
fi

tag=${PYVER/./}
PIP=(python3 -m pip download --dest "$DEST" --only-binary=:all: --python-version "$PYVER"
     --implementation cp --abi "cp$tag")
for p in "${PLATFORMS[@]}"; do PIP+=(--platform "$p"); done
PIP+=("${PACKAGES[@]}")

if [ "$DRY_RUN" = 1 ]; then
  echo "would run: ${PIP[*]}"
  echo "then drop wheels of: ${BOX_HAS[*]}"
  echo "and write $DEST/requirements.txt: ${PACKAGES[*]}"
  exit 0
fi

mkdir -p "$DEST"
"${PIP[@]}"
for prefix in "${BOX_HAS[@]}"; do
  for whl in "$DEST"/"$prefix"*.whl; do
    [ -e "$whl" ] || continue
    echo "dropping $(basename "$whl") (the GPU box has it)"
    rm -f "$whl"
  done
done
printf '%s\n' "${PACKAGES[@]}" > "$DEST/requirements.txt"
size_kib=$(du -sk "$DEST" | cut -f1)
ls -l "$DEST"
echo "$DEST: $((size_kib / 1024)) MiB"
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "fetch-gpu-wheels.sh: $DEST is over ${LIMIT_MIB} MiB: the device tool would not carry it;" \
    "leave out what the check at hand does not need (e.g. --platform for one tag only)" >&2
  exit 1
fi
