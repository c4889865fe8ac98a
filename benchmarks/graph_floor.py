"""The memory floor an ONNX graph sets: the most bytes of activations alive at once when its
nodes run in file order and every tensor is freed right after its last reader.

    python benchmarks/graph_floor.py [--model FILE] [--resolution 1920x1088] [--as-run]

Tensor sizes are measured, not inferred: the graph runs once in ONNX Runtime at a quarter of
the width and height with every tensor as an output, and each size is scaled by 16 (every
tensor of this network scales with the pixels). ``--as-run`` applies the edits the ONNX
Runtime backend makes on the CPU (sllen.runtime.backends.ort_graph: no segmentation output,
Conv(Concat) split) first. No allocator reaches the floor; the gap to a measured peak RSS is
the runtime's (benchmarks/ort_memory.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def tensor_sizes(proto, height: int, width: int, scale: int = 4) -> dict[str, int]:
    from sllen.runtime.backends.ort_graph import probe_session

    session = probe_session(proto)
    x = np.zeros((1, 3, height // scale, width // scale), np.float32)
    name = session.get_inputs()[0].name
    values = session.run(None, {name: x})
    sizes = {
        o.name: v.nbytes * scale * scale for o, v in zip(session.get_outputs(), values, strict=True)
    }
    sizes[name] = x.nbytes * scale * scale
    return sizes


def floor(proto, sizes: dict[str, int]) -> tuple[int, str, list[tuple[int, str]]]:
    """(peak bytes, node at the peak, the largest tensors alive there)."""
    last_use: dict[str, int] = {}
    for i, node in enumerate(proto.graph.node):
        for name in node.input:
            last_use[name] = i
    outputs = {o.name for o in proto.graph.output}
    first = proto.graph.input[0].name
    live = {first: sizes.get(first, 0)}
    peak, where, held = 0, "", []
    for i, node in enumerate(proto.graph.node):
        for name in node.output:
            live[name] = sizes.get(name, 0)
        total = sum(live.values())
        if total > peak:
            peak, where = total, f"{node.op_type} {node.name}"
            held = sorted(((v, k) for k, v in live.items()), reverse=True)[:6]
        for name in [*node.input, *node.output]:
            if name in live and last_use.get(name, -1) <= i and name not in outputs:
                del live[name]
    return peak, where, held


def main() -> None:
    import onnx

    from sllen.runtime.backends.ort_graph import drop_outputs, split_concat_convs
    from sllen.runtime.bundled import bundled_onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=bundled_onnx())
    ap.add_argument("--resolution", default="1920x1088", help="WxH, multiples of 64")
    ap.add_argument("--as-run", action="store_true", help="apply the backend's CPU edits")
    args = ap.parse_args()
    try:
        width, height = (int(v) for v in args.resolution.lower().split("x"))
    except ValueError:
        ap.error(f"--resolution {args.resolution}: give WxH, e.g. 1920x1088")
    if width % 64 or height % 64:  # the graph's shapes are traced at the size as given
        ap.error(f"--resolution {args.resolution}: width and height must be multiples of 64")
    proto = onnx.load(str(args.model))
    if args.as_run:
        drop_outputs(proto, [proto.graph.output[0].name])
        split_concat_convs(proto)
    peak, where, held = floor(proto, tensor_sizes(proto, height, width))
    mib = 2**20
    print(
        f"{args.model.name} at {width}x{height}{' (as run)' if args.as_run else ''}: "
        f"floor {peak / mib:,.0f} MiB at {where}"
    )
    for size, name in held:
        print(f"  {size / mib:8,.0f} MiB  {name}")


if __name__ == "__main__":
    main()
