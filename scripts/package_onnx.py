"""Export the bundled weights to the bundled ONNX file that torch-free installs run.

    python scripts/package_onnx.py            # writes sllen/weights/sllen-edge.onnx

FP32, opset 19, dynamic batch/height/width, simplified with onnxslim and checked against
PyTorch (the same steps as `sllen-export --target cpu`), with the attention as ONNX Runtime's
MultiHeadAttention node (`--attention mha`: memory linear in the frame, so a 4K frame runs
whole) and the segmentation logits as a second output so `sllen-run --segmentation` works on
ONNX Runtime too (ONNX Runtime computes only what the requested outputs need: the enhancement
alone does not pay for it). The parity check runs at two sizes: the usual 192x256 frames and
one 1920x1088 frame (8,160 tokens, several of the attention kernel's blocks).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sllen.export.onnx_export import export_onnx
from sllen.export.parity import check_parity, parity_inputs
from sllen.export.simplify import simplify_onnx
from sllen.model.io import load_weights
from sllen.weights import default_weights

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "sllen" / "weights" / "sllen-edge.onnx"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    model = load_weights(default_weights())
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_onnx(model, Path(tmp) / "raw.onnx", attention="mha", segmentation=True)
        simplify_onnx(raw, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB)")
    for n, size in ((4, (192, 256)), (1, (1088, 1920))):
        report = check_parity(model, args.out, parity_inputs(n, size))
        print(f"parity vs PyTorch at {n} x {size[1]}x{size[0]}: {report}")


if __name__ == "__main__":
    main()
