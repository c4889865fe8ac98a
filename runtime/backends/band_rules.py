"""Which ops may run in bands (of rows or of columns), and how many rows or columns next to a
band edge each can corrupt.

runtime/backends/banded.py partitions a graph and runs its full- and half-resolution parts
band by band; this module holds the rules a band segment must satisfy (local ops only,
reductions over channels only, shift-invariant resizes, parameters that do not vary along
the rows or columns) and counts the segment's receptive field through its ops, which sets the halo.
"""

from __future__ import annotations

from typing import Any

# Row-local ops a band segment may contain (with the per-op checks in check_band_segment).
_POINTWISE = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal",
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Clip", "Identity", "Cast", "Erf",
    "HardSigmoid", "HardSwish", "Softplus", "Elu", "PRelu", "BatchNormalization",
}  # fmt: skip
_CHANNEL_REDUCE = {
    "ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceProd", "ReduceL2",
    "ReduceLogSumExp", "Softmax", "LogSoftmax",
}  # fmt: skip
# Stacking and splitting along the channels (the refinement's batched box means).
_CHANNEL_STACK = {"Concat", "Split"}
BAND_OPS = frozenset(
    _POINTWISE | _CHANNEL_REDUCE | _CHANNEL_STACK | {"Conv", "MaxPool", "AveragePool", "Resize"}
)


class BandingUnsupported(ValueError):
    """The graph does not fit the banding assumptions; run the whole frame instead."""


def node_attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def check_band_segment(
    group: list[Any],
    inits: dict[str, Any],
    seg_in: list[str],
    seg_out: list[str],
    scale: dict[str, int],
    shape: dict[str, tuple[int, ...]],
) -> int:
    """Check the band segment's ops; return its receptive field in full-res rows (how
    many rows next to a band edge can differ from the whole-frame run)."""
    from onnx import numpy_helper

    # Rows and columns next to each band edge that may be wrong, per tensor, in full-res
    # rows and columns: counted apart (a separable box filter reaches far along one only).
    bad: dict[str, tuple[int, int]] = {t: (0, 0) for t in seg_in}
    for n in group:
        what = f"{n.op_type} {n.name}"
        if n.op_type not in BAND_OPS or n.domain not in ("", "ai.onnx"):
            raise BandingUnsupported(f"{what}: not a row-local op (in a band segment)")
        a = node_attrs(n)
        data = [t for t in n.input if t and t in scale]
        outs = [o for o in n.output if o]
        if not data or any(o not in scale for o in outs):
            raise BandingUnsupported(f"{what}: an input or output without a spatial scale")
        # Inputs without a scale (weights, sizes, per-channel vectors) must not vary along
        # the rows: a band would read the wrong part of them.
        params = [t for t in n.input if t and t not in scale]
        if n.op_type != "Conv":
            for t in params:
                dims = inits[t].dims if t in inits else shape.get(t, ())
                if len(dims) >= 2 and (dims[-2] != 1 or dims[-1] != 1):
                    raise BandingUnsupported(f"{what}: {t} varies along the rows or columns")
        s_in = scale[data[0]]
        s_out = scale[outs[0]]
        c_in = (max(bad.get(t, (0, 0))[0] for t in data), max(bad.get(t, (0, 0))[1] for t in data))
        if any(scale[t] != s_in for t in data) and n.op_type != "Resize":
            raise BandingUnsupported(f"{what}: inputs at different scales")
        if n.op_type in ("Conv", "MaxPool", "AveragePool"):
            weight = inits.get(n.input[1]) if len(n.input) > 1 else None
            kernel = a.get("kernel_shape") or (list(weight.dims[2:]) if weight else [])
            strides = a.get("strides", [1, 1])
            pads = a.get("pads", [0, 0, 0, 0])
            dil = a.get("dilations", [1, 1])
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or a.get("ceil_mode", 0):
                raise BandingUnsupported(f"{what}: auto_pad or ceil_mode")
            if len(kernel) != 2 or strides[0] != strides[1] or s_out != s_in * strides[0]:
                raise BandingUnsupported(f"{what}: not a 2-D op with equal strides")
            # Output row y reads input rows [y*st - top, y*st - top + e - 1]. With c bad
            # rows at each edge of the input: at the top the outputs whose window starts
            # in them, at the bottom those whose window ends in them (band heights are
            # multiples of the stride: they are multiples of align at every scale). Bands
            # run along rows or columns (the frame's longer side): the larger of the two.
            st, lines = strides[0], []
            for ax in (0, 1):
                e, top, bottom = (kernel[ax] - 1) * dil[ax] + 1, pads[ax], pads[ax + 2]
                c = -(-c_in[ax] // s_in)
                rows = max(-(-(c + top) // st), (top + bottom - e) // st - (top - c - e) // st)
                lines.append(rows * s_out)
            c_out = (lines[0], lines[1])
        elif n.op_type == "Resize":
            mode = a.get("mode", b"nearest")
            coord = a.get("coordinate_transformation_mode", b"half_pixel")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            coord = coord.decode() if isinstance(coord, bytes) else coord
            if (
                mode not in ("nearest", "linear")
                or coord not in ("half_pixel", "pytorch_half_pixel", "asymmetric")
                or a.get("antialias", 0)
                or s_in % s_out
            ):  # align_corners and the like depend on the frame's size
                raise BandingUnsupported(f"{what}: {mode}/{coord} is not shift-invariant")
            c_out = (c_in[0] + s_in, c_in[1] + s_in)  # one input line more at each edge
        elif n.op_type in _CHANNEL_REDUCE:
            if n.op_type in ("Softmax", "LogSoftmax"):
                axes = [a.get("axis", -1)]
            elif "axes" in a:
                axes = list(a["axes"])
            elif len(n.input) > 1 and n.input[1] in inits:
                axes = numpy_helper.to_array(inits[n.input[1]]).tolist()
            else:
                axes = []  # all axes, or not known before running
            if not axes or any(ax % 4 != 1 for ax in axes):
                raise BandingUnsupported(f"{what}: reduces over more than the channels")
            c_out = c_in
        elif n.op_type in _CHANNEL_STACK:
            if a.get("axis", 0) % 4 != 1:
                raise BandingUnsupported(f"{what}: stacks or splits along more than the channels")
            c_out = c_in
        else:  # pointwise
            c_out = c_in
        if s_out != s_in and n.op_type not in ("Conv", "MaxPool", "AveragePool", "Resize"):
            raise BandingUnsupported(f"{what}: changes the scale")
        for o in outs:
            bad[o] = c_out
    return max((max(bad[t]) for t in seg_out), default=0)
