"""Store trained weights as the bundled default model (FP16 tensors, metadata kept).

    python scripts/package_weights.py runs/edge-default/last.safetensors \
        sllen/weights/sllen-edge.safetensors

FP16 storage halves the file (the network runs in FP32 after loading; the difference is
below 1e-3 per pixel); the training metadata (command config, steps, G, validation scores)
travels in the safetensors header.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sllen.model.io import load_weights, read_metadata, save_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    args = ap.parse_args()
    meta = {k: v for k, v in read_metadata(args.src).items() if not k.startswith("sllen_")}
    meta["packaged_from"] = args.src.name
    meta["stored_dtype"] = "float16"
    save_weights(load_weights(args.src), args.dst, meta, dtype=torch.float16)
    print(f"wrote {args.dst} ({args.dst.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
