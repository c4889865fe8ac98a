"""Store trained weights as the bundled default model (FP16 tensors, metadata kept).

    python scripts/package_weights.py runs/edge-default/last.safetensors \
        sllen/weights/sllen-edge.safetensors

``--refine-radius N`` and ``--refine-chroma-radius N`` store the guided refinement's radii in
the file's config (the network's tensors are unchanged; 0 turns it off, or its colour stage;
sllen/model/refine.py).

FP16 storage halves the file (the network runs in FP32 after loading; the difference is
below 1e-3 per pixel); the training metadata (command config, steps, G, validation scores)
travels in the safetensors header.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sllen.model.io import load_weights, read_metadata, save_weights
from sllen.model.sllen import SLLEN


def rebuilt(model: SLLEN, **refine: int) -> SLLEN:
    """The same network with other refinement settings (no tensors change)."""
    out = SLLEN(model.config.replace(**refine))
    out.load_state_dict(model.state_dict())
    return out.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--refine-radius", type=int, default=None, help="default: the file's")
    ap.add_argument(
        "--refine-chroma-radius", type=int, default=None, help="colour stage; default: the file's"
    )
    args = ap.parse_args()
    meta = {k: v for k, v in read_metadata(args.src).items() if not k.startswith("sllen_")}
    meta.setdefault("packaged_from", args.src.name)  # a repackaged file keeps its origin
    meta["stored_dtype"] = "float16"
    model = load_weights(args.src)
    refine = {
        k: v
        for k, v in (
            ("refine_radius", args.refine_radius),
            ("refine_chroma_radius", args.refine_chroma_radius),
        )
        if v is not None
    }
    if refine:
        model = rebuilt(model, **refine)
    save_weights(model, args.dst, meta, dtype=torch.float16)
    print(f"wrote {args.dst} ({args.dst.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
