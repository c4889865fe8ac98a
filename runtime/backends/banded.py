"""Exact band execution (rows; columns for a panorama) of a U-Net-like ONNX graph on ONNX
Runtime (CPU, FP32).

Why: on the CPU the whole-frame session's peak memory is set by the full-resolution tensors
(16-48 channels at H x W in the first encoder level and the last stage of both decoders), not
by the attention, which runs at 1/16 scale. Those full-resolution nodes are all local (3x3
convolutions, pointwise ops, reductions over channels, 2x pooling, 2x bilinear upsampling), so
they can run on row bands of the frame, each with a halo wider than their receptive field,
and give the same numbers as the whole frame (float rounding) with a fraction of the memory.

How:

- A probe runs the graph at two small sizes with every tensor as an output and learns each
  tensor's *scale*: an integer s when its last two dims are (H/s, W/s) at both sizes, none
  otherwise (token sequences, pooled vectors, shape tensors).
- Nodes that only compute shapes (Shape and what follows from shapes and constants, all
  small) are *shape nodes*: they are copied into every segment that needs them, so a band
  segment computes its Resize sizes from the band it is given and a whole segment from the
  whole frame.
- The other nodes are *band* nodes when they read or write a tensor at scale ``band_scale``
  or finer (default 2: the full- and half-resolution levels) and *whole* nodes otherwise.
  They are grouped, in a topological order that takes as many ready nodes of one kind as it
  can before switching, into alternating band and whole segments, each one ONNX Runtime
  session (all on one shared arena).
- A whole segment runs on the whole frame (its tensors are at 1/4 scale or below). A band
  segment runs band by band: its inputs at scale s are sliced on rows [lo/s, hi/s), where
  [lo, hi) is the band's rows [r0, r1) widened by the halo and clipped to the frame (no
  padding: the frame's borders look exactly as in the whole-frame run); its outputs are cropped
  back to [r0/s, r1/s) and written into whole-frame arrays. Tensors that cross segments are
  kept as whole-frame arrays and freed after their last reader.
- Every band-segment op is checked against an allowlist of row-local ops, and the rows a band
  edge can corrupt (the receptive field) are counted through the segment (band_rules.py); a
  graph that does not fit raises :class:`BandingUnsupported` at construction, so the caller
  can open the whole-frame session instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from sllen.runtime.backends.band_rules import (
    BAND_OPS,
    BandingUnsupported,
    check_band_segment,
)
from sllen.runtime.shapes import MULTIPLE

__all__ = ["BAND_OPS", "BandedModel", "BandingUnsupported", "Segment"]

# Probe sizes (H, W): multiples of 64, H and W swapped so that no token or channel count
# passes for a spatial dim at both sizes.
_PROBES = ((128, 192), (192, 128))
# Largest shape-node output (elements) at the probe sizes: shape vectors and scalars.
_SMALL = 64

# Nodes that only compute shapes start from these (see BandedModel.__init__).
_SHAPE_OPS = {"Shape", "Size"}


@dataclass
class Segment:
    """One ONNX Runtime session over a run of band or whole nodes."""

    band: bool
    ops: list[str]  # op types of its main nodes (shape nodes not counted)
    inputs: list[str]
    outputs: list[str]
    halo_needed: int = 0  # band segments: rows a band edge can corrupt (full-res rows)
    halo: int = 0  # band segments: rows of context above and below each band
    session: Any = field(default=None, repr=False)


def _session(model: bytes, threads: int | None) -> Any:
    """A CPU session on the process-wide arena. Each session's own arena keeps what its
    largest run grew, and five of them add up: measured at 1920x1088, 2 threads (with
    band_scale 1 and 32-row halos), one arena per session 1,994 MiB peak RSS, no arena
    1,139 MiB but 1.5x slower (every run faults its pages in again), one shared arena
    1,081 MiB at the arena's speed."""
    import onnxruntime as ort

    from sllen.runtime.backends.onnxruntime import session_options

    global _ARENA
    if not _ARENA:
        arena = ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR
        info = ort.OrtMemoryInfo("Cpu", arena, 0, ort.OrtMemType.DEFAULT)
        try:  # process-wide (emptied by BandedModel.release): the sessions share one peak
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
        except Exception:  # registered already (by another BandedModel or the caller)
            pass
        _ARENA = True
    opts = session_options(threads)
    opts.add_session_config_entry("session.use_env_allocators", "1")
    # Five sessions, five thread pools: a pool that spins after its run takes the cores from
    # the next session. Measured on a loaded 2-core machine, 2 threads, medians without /
    # with spinning: 4.87-4.94 / 5.17-6.02 s at 1920x1088, 1.96-2.34 / 2.10-2.48 s at
    # 1280x720 (within the noise, but not slower).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


_ARENA = False


def _probe(proto: Any, channels: int) -> list[dict[str, np.ndarray]]:
    """Every tensor's value at the probe sizes (ORT, no optimisation: all tensors kept)."""
    from sllen.runtime.backends.ort_graph import probe_session

    try:
        session = probe_session(proto)
        name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        values = []
        for h, w in _PROBES:
            x = np.zeros((1, channels, h, w), np.float32)
            values.append({name: x, **dict(zip(names, session.run(None, {name: x}), strict=True))})
    except Exception as e:  # a graph that takes other sizes or inputs
        raise BandingUnsupported(f"the probe run failed: {' '.join(str(e).split())[:200]}") from e
    return values


def _scale(values: list[dict[str, np.ndarray]], name: str) -> int | None:
    """s when the tensor is [..., H/s, W/s] at every probe size, else None."""
    found: set[int] = set()
    for (h, w), vals in zip(_PROBES, values, strict=True):
        v = vals.get(name)
        if v is None or v.ndim != 4 or v.shape[2] == 0 or v.shape[3] == 0:
            return None
        if h % v.shape[2] or w % v.shape[3] or h // v.shape[2] != w // v.shape[3]:
            return None
        found.add(h // v.shape[2])
    return found.pop() if len(found) == 1 else None


class BandedModel:
    """Run an ONNX model with its full-resolution parts in row bands (see the module doc).

    ``proto``: the ModelProto to run (sllen applies ort_graph's edits first); one float input
    [N, C, H, W] with dynamic H and W. ``band_rows``: output rows per band; ``halo``: rows of
    context above and below each band, at least every band segment's receptive field; None:
    per band segment the least multiple of ``align`` that covers its own (the bundled model: 8,
    16 and 36 rows, the last with the refinement's colour stage, so halos of 16, 16 and 48
    rows). Both must be multiples of ``align`` (16 for sllen: every scale a band segment
    touches and the runtime's MULTIPLE, as the graph computes Resize sizes like 8 * (H // 16)
    from the band's own height), so that pooling and upsampling fall on the whole-frame grid.
    ``band_scale``: nodes touching tensors at this scale or finer run in bands. 1 (only the
    full-resolution nodes) leaves the half-resolution encoder and decoder stages to
    whole-frame segments: 1,051-1,181 MiB peak at 1920x1088 (in-process, 2 threads) against
    885-890 MiB with 2, at about the same speed."""

    def __init__(
        self,
        proto: Any,
        *,
        threads: int | None,
        band_rows: int = 256,
        halo: int | None = None,
        band_scale: int = 2,
    ) -> None:
        import onnx

        graph = proto.graph
        inits = {t.name: t for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in inits]
        if len(inputs) != 1 or not graph.output:
            raise BandingUnsupported("expected one input and at least one output")
        dims = inputs[0].type.tensor_type.shape.dim
        if len(dims) != 4 or any(d.HasField("dim_value") for d in dims[2:]):
            raise BandingUnsupported("the input must be 4-D with dynamic height and width")
        for node in graph.node:
            if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                   for a in node.attribute):  # fmt: skip
                raise BandingUnsupported(f"{node.op_type} {node.name}: subgraphs")
        self.input_name = inputs[0].name
        self.output_name = graph.output[0].name
        self._channels = dims[1].dim_value or 3

        # Only what the first output needs (the others are not returned).
        producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
        needed: set[int] = set()
        stack = [self.output_name]
        while stack:
            i = producer.get(stack.pop(), -1)
            if i >= 0 and i not in needed:
                needed.add(i)
                stack.extend(t for t in graph.node[i].input if t)
        nodes = [graph.node[i] for i in sorted(needed)]  # file order is topological

        values = _probe(proto, dims[1].dim_value or 3)
        v0 = values[0]
        scale = {t: s for t in v0 if (s := _scale(values, t)) is not None}

        # Shape nodes: Shape/Size, and whatever small tensor follows from shapes and constants.
        shape_tensors: set[str] = set()
        shape_nodes: set[int] = set()
        for i, n in enumerate(nodes):
            outs = [o for o in n.output if o]
            small = all(
                o in v0 and all(v[o].size <= _SMALL for v in values) and o not in scale
                for o in outs
            )
            from_shapes = all(t in inits or t in shape_tensors for t in n.input if t)
            if n.op_type in _SHAPE_OPS or (small and from_shapes):
                shape_nodes.add(i)
                shape_tensors.update(outs)
        made = {o: i for i, n in enumerate(nodes) for o in n.output if o}

        # Main nodes: band when they touch a tensor at scale band_scale or finer.
        main = [i for i in range(len(nodes)) if i not in shape_nodes]
        band = {
            i: any(
                scale.get(t, band_scale + 1) <= band_scale
                for t in [*nodes[i].input, *nodes[i].output]
                if t
            )
            for i in main
        }

        # What each main node needs: its inputs, and through shape nodes theirs.
        def closure(i: int) -> tuple[set[int], set[str]]:
            """(shape nodes, tensors from outside them) behind node i's inputs."""
            snodes: set[int] = set()
            reads: set[str] = set()
            todo = [t for t in nodes[i].input if t]
            while todo:
                t = todo.pop()
                j = made.get(t)
                if j is not None and j in shape_nodes:
                    if j not in snodes:
                        snodes.add(j)
                        todo.extend(u for u in nodes[j].input if u)
                elif t not in inits:
                    reads.add(t)
            return snodes, reads

        deps = {i: closure(i) for i in main}

        # Kind-batched topological order: as many ready nodes of one kind as possible, then
        # switch (fewest segments; the band and whole work interleaves in file order).
        done: set[int] = set()
        available = {self.input_name}
        groups: list[tuple[bool, list[int]]] = []
        kind = band[main[0]]
        idle = 0
        while len(done) < len(main):
            group: list[int] = []
            progress = True
            while progress:
                progress = False
                for i in main:
                    if i in done or band[i] != kind or not deps[i][1] <= available:
                        continue
                    group.append(i)
                    done.add(i)
                    available.update(o for o in nodes[i].output if o)
                    progress = True
            if group:
                groups.append((kind, group))
                idle = 0
            else:
                idle += 1
                if idle > 1:
                    raise BandingUnsupported("the graph could not be ordered into segments")
            kind = not kind
        self._sink(groups, nodes, deps, {t: v.nbytes for t, v in v0.items()}, self.input_name)

        # Readers of each tensor by segment index (for outputs and freeing).
        last_reader: dict[str, int] = {self.output_name: len(groups)}
        seg_reads: list[set[str]] = []
        seg_made: list[set[str]] = []
        for k, (_, group) in enumerate(groups):
            reads = set().union(*(deps[i][1] for i in group))
            made_here = {o for i in group for o in nodes[i].output if o}
            seg_reads.append(reads - made_here)
            seg_made.append(made_here)
            for t in reads - made_here:
                last_reader[t] = max(last_reader.get(t, -1), k)

        self.segments: list[Segment] = []
        self._scale = scale
        self._shape = {t: v.shape for t, v in v0.items()}
        self._dtype = {t: v.dtype for t, v in v0.items()}
        self._last_reader = last_reader
        # Band edges on multiples of every scale a band segment touches (pooling and 2x
        # upsampling then fall on the whole-frame grid) and of the runtime's MULTIPLE (the
        # graph computes sizes like 8 * (H // 16) from the band's own height).
        align = MULTIPLE
        for k, (is_band, group) in enumerate(groups):
            seg_in = sorted(seg_reads[k])
            seg_out = sorted(t for t in seg_made[k] if last_reader.get(t, -1) > k)
            snodes = set().union(*(deps[i][0] for i in group))
            members = sorted(snodes | set(group))
            seg = Segment(is_band, [nodes[i].op_type for i in group], seg_in, seg_out)
            if is_band:
                seg.halo_needed = check_band_segment(
                    [nodes[i] for i in group], inits, seg_in, seg_out, scale, self._shape
                )
                touched = {t for i in group for t in [*nodes[i].input, *nodes[i].output]}
                align = math.lcm(align, *(scale[t] for t in touched if t in scale))
            sub = self._submodel(proto, [nodes[i] for i in members], inits, seg_in, seg_out)
            seg.session = sub  # serialized for now; sessions opened below
            self.segments.append(seg)

        self.align = align
        if band_rows <= 0 or band_rows % align or (halo is not None and halo % align):
            raise ValueError(f"band_rows and halo must be multiples of {align}")
        for seg in self.segments:
            if not seg.band:
                continue
            # The least aligned halo that covers the segment's receptive field (16 rows for
            # sllen's first and last band segments, 32 for the middle one), or the one asked.
            seg.halo = -(-seg.halo_needed // align) * align if halo is None else halo
            if seg.halo < seg.halo_needed:
                raise BandingUnsupported(
                    f"halo {seg.halo} is below a band segment's receptive field "
                    f"({seg.halo_needed} rows)"
                )
        self.band_rows = band_rows

        for seg in self.segments:
            seg.session = _session(seg.session, threads)

    # -- construction helpers ------------------------------------------------------------

    @staticmethod
    def _sink(
        groups: list[tuple[bool, list[int]]],
        nodes: list[Any],
        deps: dict[int, tuple[set[int], set[str]]],
        nbytes: dict[str, int],
        kept: str,
    ) -> None:
        """Move a node whose outputs are all read by later segments into the first of them
        (same kind) when the inputs that would live longer for it are no larger than its
        outputs (``kept``, the graph input, lives throughout). The greedy order runs a node
        as soon as it can: split_concat_convs' skip convolutions Conv(relu_1, W_skip) went
        into the first band segment, so two 16-channel full-resolution partial sums crossed
        to the decoders instead of relu_1 alone (twice the memory kept between segments)."""
        moved = True
        while moved:
            moved = False
            where = {i: k for k, (_, g) in enumerate(groups) for i in g}
            readers: dict[str, set[int]] = {}
            for i, k in where.items():
                for t in deps[i][1]:
                    readers.setdefault(t, set()).add(k)
            for i, k in sorted(where.items(), reverse=True):
                outs = [o for o in nodes[i].output if o]
                later = set().union(*(readers.get(o, set()) for o in outs))
                if not later or min(later) <= k:
                    continue
                target = min(later)
                if groups[target][0] != groups[k][0]:
                    continue
                longer = [t for t in deps[i][1] if t != kept and max(readers[t]) < target]
                if sum(nbytes.get(t, 0) for t in longer) > sum(nbytes.get(o, 0) for o in outs):
                    continue  # more would cross segments than before
                groups[k][1].remove(i)
                groups[target][1].append(i)
                groups[target][1].sort()
                moved = True
                break
        groups[:] = [g for g in groups if g[1]]

    def _submodel(
        self,
        proto: Any,
        members: list[Any],
        inits: dict[str, Any],
        seg_in: list[str],
        seg_out: list[str],
    ) -> bytes:
        """A model of these nodes, with the initializers they read (built from the node list:
        no shape inference needed across the cuts)."""
        from onnx import helper

        used = {t for n in members for t in n.input}
        feeds = [t for t in seg_in]
        for n in members:  # shape nodes read the tensors whose shapes they take
            feeds.extend(t for t in n.input if t and t not in inits and t not in feeds)
        made = {o for n in members for o in n.output}
        feeds = [t for t in dict.fromkeys(feeds) if t not in made]
        elem = helper.np_dtype_to_tensor_dtype

        def info(t: str) -> Any:
            # The rank (and the channels of spatial tensors) must be known: with no shape at
            # all ONNX Runtime's shape inference gives Shape(x)[2:3] no elements and rejects
            # the Resize sizes computed from it.
            dims: list[int | None] = [None] * len(self._shape[t])
            if t in self._scale:
                dims[1] = self._shape[t][1]
            return helper.make_tensor_value_info(t, elem(self._dtype[t]), dims)

        graph = helper.make_graph(
            list(members),
            "segment",
            [info(t) for t in feeds],
            [info(t) for t in seg_out],
            [inits[t] for t in sorted(used) if t in inits],
        )
        model = helper.make_model(
            graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version
        )
        return bytes(model.SerializeToString())

    # -- running ------------------------------------------------------------------------

    # "auto": bands of columns for a frame over twice as wide as tall, else of rows;
    # "rows"/"columns" force one (benchmarks/ort_memory.py compares them)
    axis: ClassVar[str] = "auto"

    def run(self, x: np.ndarray, run_options: Any = None) -> np.ndarray:
        """The first graph output for x [N, C, H, W] (H a multiple of ``align``);
        ``run_options``: ONNX Runtime RunOptions for every session's run."""
        n, _, height, width = x.shape
        if height % self.align or width % self.align:
            raise ValueError(f"height and width must be multiples of {self.align}")
        store: dict[str, np.ndarray] = {self.input_name: x}
        for k, seg in enumerate(self.segments):
            feeds = [t for t in (i.name for i in seg.session.get_inputs())]
            if not seg.band:
                result = seg.session.run(seg.outputs, {t: store[t] for t in feeds}, run_options)
                store.update(zip(seg.outputs, result, strict=True))
            else:
                self._run_band(seg, feeds, store, n, height, width, run_options)
            for t in [t for t in store if self._last_reader.get(t, -1) <= k]:
                if t != self.input_name:
                    del store[t]  # its last reader has run: free it now
        return store[self.output_name]

    def release(self) -> None:
        """Hand the shared arena's free regions back to the OS: a run on a tiny frame with
        ONNX Runtime's arena shrinkage (onnxruntime.ARENA_SHRINK). Without it the arena keeps
        what the largest banded frame grew for as long as the process lives."""
        from sllen.runtime.backends.onnxruntime import RELEASE_SIZE, arena_shrink_options

        side = -(-RELEASE_SIZE // self.align) * self.align
        tiny = np.zeros((1, self._channels, side, side), np.float32)
        self.run(tiny, arena_shrink_options())

    def _run_band(
        self,
        seg: Segment,
        feeds: list[str],
        store: dict[str, np.ndarray],
        n: int,
        height: int,
        width: int,
        run_options: Any = None,
    ) -> None:
        scale = self._scale
        outs = {}
        for t in seg.outputs:
            s = scale[t]
            outs[t] = np.empty((n, *self._shape[t][1:-2], height // s, width // s), self._dtype[t])
        # Columns for a panorama: in row bands a 6000x400 frame kept nearly all of itself in
        # each band (1,681 MiB peak; in column bands 886 MiB). Not for 16:9: at 4K columns were
        # 10 % slower for 3 % less memory (strided copies, more bands; ort_memory.py).
        columns = self.axis == "columns" or (self.axis == "auto" and width > 2 * height)
        axis, extent = (-1, width) if columns else (-2, height)

        def part(v: np.ndarray, a: int, b: int) -> np.ndarray:  # [a, b) along the band axis
            return v[..., a:b] if axis == -1 else v[..., a:b, :]

        for r0 in range(0, extent, self.band_rows):
            r1 = min(r0 + self.band_rows, extent)
            lo, hi = max(0, r0 - seg.halo), min(extent, r1 + seg.halo)
            band = {}
            for t in feeds:
                v, st = store[t], scale.get(t)
                # Spatial tensors: the band's part (a copy: ORT wants contiguous input).
                band[t] = np.ascontiguousarray(part(v, lo // st, hi // st)) if st else v
            result = seg.session.run(seg.outputs, band, run_options)
            for t, v in zip(seg.outputs, result, strict=True):
                s = scale[t]
                if v.shape[axis] != (hi - lo) // s:
                    raise RuntimeError(f"{t}: {v.shape[axis]} lines in a band of {(hi - lo) // s}")
                part(outs[t], r0 // s, r1 // s)[...] = part(v, (r0 - lo) // s, (r1 - lo) // s)
            del band, result
        store.update(outs)
