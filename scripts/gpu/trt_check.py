"""The questions only a real TensorRT answers, one per call (scripts/trt-check.sh runs them all).

    python scripts/gpu/trt_check.py QUESTION --out DIR [--plugin LIB] [--dynamic-plugin LIB]
    python scripts/gpu/trt_check.py merge --out DIR

Each question runs in its own process (a fresh plugin registry), writes
DIR/questions/QUESTION.json ({"question", "status", "answer", ...}) and exits 0 (answered /
passed), 77 (cannot be asked here, e.g. no DLA) or 1 (failed). `merge` gathers them, with the
engine-inspector listings in DIR/layers/, into DIR/trt_check.json: the record the project keeps
as test data (tests/export/data/trt_check/<tensorrt>-<gpu>/, read by
tests/export/trt/test_recorded_trt_check.py; docs/deploy-jetson.md says how to add one).

Questions:
- environment: TensorRT, GPU, compute capability, DLA cores, Polygraphy;
- plugin_lookup_static: libsllen_attention_plugin.so loaded (ctypes, as sllen does): does the
  registry find (SllenAttention, 1, sllen), the triple the ONNX node asks for, and nothing
  under ""?
- plugin_lookup_dynamic: libsllen_attention_plugin_dynamic.so through
  get_plugin_registry().load_library: under which namespace does TensorRT file the creators of
  getCreators() (the headers do not say)?
- plugin_engine: a decomposed FP16 attention (heads of 64 and 512) rewritten to the plugin node
  (sllen.export.trt.plugin_rewrite), parsed, built, and run against the float64 reference;
- fusion_listing: the engine inspector's real layer listing (ProfilingVerbosity.DETAILED) of the
  decomposed attention, FP16 with heads of 64 and 512 and INT8 Q/DQ with heads of 64, saved to
  DIR/layers/, with attention_fusion()'s verdict on each: the data the fusion rules are held to;
- fp16_qdq_scales: does this TensorRT parse and build Q/DQ nodes whose scales are FP16 (as an
  FP16 file's would be), next to the same graph with FP32 scales?
- dla_strongly_typed: a strongly typed FP16 (and INT8 Q/DQ) convolution network on DLA core 0
  with GPU fallback: does it build, which layers run on DLA (can_run_on_DLA)? (Jetson Orin,
  TensorRT 10.x; skipped without DLA cores)
- version_compatible_plugin: an engine built VERSION_COMPATIBLE with the dynamic plugin library
  in plugins_to_serialize, deserialized in a fresh process with engine_host_code_allowed and no
  plugin loaded: does it load?
- timing_cache: what create_timing_cache does with bytes that are not a timing cache (None, an
  exception, or a cache), and whether set_timing_cache accepts this machine's own cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

QUESTIONS = (
    "environment",
    "plugin_lookup_static",
    "plugin_lookup_dynamic",
    "plugin_engine",
    "fusion_listing",
    "fp16_qdq_scales",
    "dla_strongly_typed",
    "version_compatible_plugin",
    "timing_cache",
)
TRIPLE = ("SllenAttention", "1", "sllen")
SCHEMA = 1


class Skip(Exception):
    """The question cannot be asked on this machine (the message says why)."""


# --------------------------------------------------------------------------- helpers


def trt_module() -> Any:
    from sllen.runtime import env

    return env.import_tensorrt()


def attention_onnx(
    head_dim: int, heads: int = 1, *, int8: bool = False, fp16_scales: bool = False
) -> bytes:
    """Decomposed attention: q [1,H,N,D], kt [1,H,D,N], v [1,H,N,D] -> MatMul -> Softmax ->
    MatMul, FP16. int8: symmetric Q/DQ (zero point 0) on q, kt, the probabilities and v, with
    FP32 scales on FP32 tensors (an INT8 file's float attention), or with fp16_scales FP16
    scales on FP16 tensors (QuantizeLinear takes x and its scale of one type)."""
    from onnx import TensorProto, helper

    f16 = TensorProto.FLOAT if int8 and not fp16_scales else TensorProto.FLOAT16
    shapes = {"q": [1, heads, "N", head_dim], "kt": [1, heads, head_dim, "N"]}
    shapes["v"] = [1, heads, "N", head_dim]
    inputs = [helper.make_tensor_value_info(n, f16, s) for n, s in shapes.items()]
    nodes, inits = [], []
    names = {n: n for n in shapes}
    if int8:
        scale_type = f16 if fp16_scales else TensorProto.FLOAT
        inits += [
            helper.make_tensor("s", scale_type, [], [0.02]),
            helper.make_tensor("sp", scale_type, [], [1 / 127]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        for n in shapes:
            nodes += [
                helper.make_node("QuantizeLinear", [n, "s", "z"], [f"{n}_q"], name=f"/{n}/Q"),
                helper.make_node("DequantizeLinear", [f"{n}_q", "s", "z"], [f"{n}_dq"]),
            ]
            names[n] = f"{n}_dq"
    nodes += [
        helper.make_node("MatMul", [names["q"], names["kt"]], ["scores"], name="/attn/MatMul"),
        helper.make_node("Softmax", ["scores"], ["p"], name="/attn/Softmax", axis=-1),
    ]
    p = "p"
    if int8:
        nodes += [
            helper.make_node("QuantizeLinear", ["p", "sp", "z"], ["p_q"], name="/attn/p/Q"),
            helper.make_node("DequantizeLinear", ["p_q", "sp", "z"], ["p_dq"]),
        ]
        p = "p_dq"
    nodes.append(helper.make_node("MatMul", [p, names["v"]], ["out"], name="/attn/MatMul_1"))
    out = helper.make_tensor_value_info("out", f16, [1, heads, "N", head_dim])
    graph = helper.make_graph(nodes, "attention", inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return model.SerializeToString()


def conv_onnx(int8: bool = False) -> bytes:
    """A small FP16 convolution network [1, 3, 256, 256] (DLA's kind of work); int8: Q/DQ
    (FP32 scale, zero point 0) on the activations in front of each convolution."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    f16 = TensorProto.FLOAT16
    x = helper.make_tensor_value_info("x", f16, [1, 3, 256, 256])
    y = helper.make_tensor_value_info("y", f16, [1, 16, 256, 256])
    w1 = numpy_helper.from_array(
        (rng.standard_normal((16, 3, 3, 3)) * 0.2).astype(np.float16), "w1"
    )
    w2 = numpy_helper.from_array(
        (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float16), "w2"
    )
    inits, nodes, last = [w1, w2], [], "x"
    if int8:
        inits += [
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.02]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
    for i, w in enumerate(("w1", "w2")):
        if int8:
            nodes += [
                helper.make_node("Cast", [last], [f"a{i}"], to=TensorProto.FLOAT),
                helper.make_node("QuantizeLinear", [f"a{i}", "s", "z"], [f"a{i}q"]),
                helper.make_node("DequantizeLinear", [f"a{i}q", "s", "z"], [f"a{i}d"]),
                helper.make_node("Cast", [f"a{i}d"], [f"a{i}h"], to=f16),
            ]
            last = f"a{i}h"
        nodes += [
            helper.make_node("Conv", [last, w], [f"c{i}"], pads=[1, 1, 1, 1], name=f"/conv{i}"),
            helper.make_node("Relu", [f"c{i}"], ["y" if i else f"r{i}"], name=f"/relu{i}"),
        ]
        last = f"r{i}"
    graph = helper.make_graph(nodes, "convs", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return model.SerializeToString()


def build(
    onnx_bytes: bytes,
    shapes: dict[str, tuple[tuple[int, ...], ...]],
    *,
    dla_core: int | None = None,
    version_compatible: bool = False,
    plugins_to_serialize: list[str] | None = None,
    keep_network: bool = False,
) -> dict[str, Any]:
    """Parse and build a strongly typed network the way sllen.export.trt.build does;
    {"parsed", "built", "errors", "serialized", "layers" (inspector), ...}."""
    from sllen.export.trt.build import _network_flags, format_parser_error
    from sllen.export.trt.fusion import inspect_layers

    trt = trt_module()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    result: dict[str, Any] = {"parsed": bool(parser.parse(onnx_bytes)), "built": False}
    result["errors"] = [format_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
    if not result["parsed"]:
        return result
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (mn, op, mx) in shapes.items():
            profile.set_shape(name, mn, op, mx)
        config.add_optimization_profile(profile)
    if dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        result["can_run_on_dla"] = {
            network.get_layer(i).name: bool(config.can_run_on_DLA(network.get_layer(i)))
            for i in range(network.num_layers)
        }
    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        if plugins_to_serialize:
            config.plugins_to_serialize = plugins_to_serialize
    serialized = builder.build_serialized_network(network, config)
    result["built"] = serialized is not None
    if serialized is None:
        return result
    result["serialized"] = bytes(serialized)
    result["layers"] = inspect_layers(
        serialized, logger=logger, dla_core=dla_core, host_code_allowed=version_compatible
    )
    if keep_network:
        result["network"] = network
    return result


def attention_shapes(head_dim: int, heads: int, n: tuple[int, int, int]) -> dict[str, Any]:
    return {
        "q": tuple((1, heads, t, head_dim) for t in n),
        "kt": tuple((1, heads, head_dim, t) for t in n),
        "v": tuple((1, heads, t, head_dim) for t in n),
    }


def run_engine(serialized: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One inference through Polygraphy's TrtRunner (it manages the device buffers)."""
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    with TrtRunner(EngineFromBytes(serialized)) as runner:
        return {k: np.asarray(v) for k, v in runner.infer(feeds).items()}


def need(path: str | None, what: str) -> Path:
    if not path or not Path(path).is_file():
        raise Skip(f"no {what} given or built (scripts/trt-check.sh builds it with CMake)")
    return Path(path)


# --------------------------------------------------------------------------- questions


def q_environment(args: argparse.Namespace) -> dict[str, Any]:
    from sllen.runtime import env

    trt = trt_module()
    name, cc = env.detect_gpu(0)
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    try:
        import polygraphy

        poly = polygraphy.__version__
    except ImportError:
        poly = None
    return {
        "tensorrt": trt.__version__,
        "gpu_name": name,
        "compute_capability": cc,
        "dla_cores": int(builder.num_DLA_cores),
        "polygraphy": poly,
        "python": sys.version.split()[0],
    }


def _lookup(trt: Any) -> dict[str, Any]:
    registry = trt.get_plugin_registry()
    found = {
        ns or "(empty)": registry.get_creator(TRIPLE[0], TRIPLE[1], ns) is not None
        for ns in ("sllen", "")
    }
    listed = [
        {"name": c.name, "version": c.plugin_version, "namespace": c.plugin_namespace}
        for c in registry.all_creators
        if "Sllen" in str(c.name)
    ]
    return {"found": found, "registered": listed}


def q_plugin_lookup_static(args: argparse.Namespace) -> dict[str, Any]:
    from sllen.runtime import env

    lib = need(args.plugin, "libsllen_attention_plugin.so")
    trt = trt_module()
    env.load_plugin_library(lib)  # ctypes.CDLL: the static initializer registers the creator
    answer = _lookup(trt)
    answer["passed"] = answer["found"]["sllen"] and not answer["found"]["(empty)"]
    return answer


def q_plugin_lookup_dynamic(args: argparse.Namespace) -> dict[str, Any]:
    lib = need(args.dynamic_plugin, "libsllen_attention_plugin_dynamic.so")
    trt = trt_module()
    handle = trt.get_plugin_registry().load_library(str(lib.resolve()))
    answer = {"load_library": handle is not None, **_lookup(trt)}
    answer["passed"] = answer["load_library"] and answer["found"]["sllen"]
    return answer


def q_plugin_engine(args: argparse.Namespace) -> dict[str, Any]:
    from sllen.export.trt.plugin_rewrite import decomposed_to_plugin
    from sllen.runtime import env
    from sllen.runtime.attention_kernel import reference_attention

    lib = need(args.plugin, "libsllen_attention_plugin.so")
    env.load_plugin_library(lib)
    work = Path(args.out) / "work"
    work.mkdir(parents=True, exist_ok=True)
    answer: dict[str, Any] = {"cases": []}
    for head_dim, heads in ((64, 2), (512, 1)):
        src = work / f"attention_d{head_dim}.onnx"
        src.write_bytes(attention_onnx(head_dim, heads))
        dst = work / f"attention_d{head_dim}.plugin.onnx"
        decomposed_to_plugin(src, dst)
        built = build(dst.read_bytes(), attention_shapes(head_dim, heads, (16, 1000, 4096)))
        case = {"head_dim": head_dim, "parsed": built["parsed"], "built": built["built"]}
        case["errors"] = built["errors"]
        if built["built"]:
            rng = np.random.default_rng(head_dim)
            q = rng.standard_normal((1, heads, 1000, head_dim)) / np.sqrt(head_dim)
            kt = rng.standard_normal((1, heads, head_dim, 1000))
            v = rng.standard_normal((1, heads, 1000, head_dim))
            feeds = {"q": q, "kt": kt, "v": v}
            feeds = {k: x.astype(np.float16) for k, x in feeds.items()}  # an FP16 graph
            try:
                (got,) = run_engine(built["serialized"], feeds).values()
                want = reference_attention(
                    feeds["q"], np.swapaxes(feeds["kt"], -1, -2), feeds["v"], 1.0
                )
                case["max_abs_err"] = float(np.abs(got.astype(np.float64) - want).max())
            except ImportError:
                case["max_abs_err"] = None  # no Polygraphy: built, not run
        answer["cases"].append(case)
    answer["passed"] = all(
        c["built"] and (c.get("max_abs_err") is None or c["max_abs_err"] < 1e-2)
        for c in answer["cases"]
    )
    return answer


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in text).strip("-")


def q_fusion_listing(args: argparse.Namespace) -> dict[str, Any]:
    from sllen.export.trt.fusion import attention_fusion

    trt = trt_module()
    layers_dir = Path(args.out) / "layers"
    layers_dir.mkdir(parents=True, exist_ok=True)
    answer: dict[str, Any] = {"listings": []}
    cases = [("fp16", 64, 2, False), ("fp16", 512, 1, False), ("int8", 64, 2, True)]
    for precision, head_dim, heads, int8 in cases:
        tokens = (16, 512, 512) if int8 else (16, 1024, 8192)
        built = build(
            attention_onnx(head_dim, heads, int8=int8), attention_shapes(head_dim, heads, tokens)
        )
        entry: dict[str, Any] = {
            "precision": precision,
            "head_dim": head_dim,
            "tokens_opt": tokens[1],
            "built": built["built"],
            "errors": built["errors"],
        }
        if built["built"]:
            name = f"layers_trt{_slug(trt.__version__)}_{precision}_d{head_dim}.json"
            (layers_dir / name).write_text(json.dumps({"Layers": built["layers"]}, indent=1))
            entry["file"] = f"layers/{name}"
            entry["verdict"] = attention_fusion(built["layers"])
        answer["listings"].append(entry)
    answer["passed"] = all(e["built"] for e in answer["listings"])
    return answer


def q_fp16_qdq_scales(args: argparse.Namespace) -> dict[str, Any]:
    answer = {}
    for label, fp16_scales in (("fp32_scales", False), ("fp16_scales", True)):
        built = build(
            attention_onnx(64, 2, int8=True, fp16_scales=fp16_scales),
            attention_shapes(64, 2, (16, 256, 512)),
        )
        answer[label] = {k: built[k] for k in ("parsed", "built", "errors")}
    # The answer itself is the data; the question fails only if even FP32 scales do not build.
    answer["passed"] = answer["fp32_scales"]["built"]
    return answer


def q_dla_strongly_typed(args: argparse.Namespace) -> dict[str, Any]:
    trt = trt_module()
    cores = int(trt.Builder(trt.Logger(trt.Logger.WARNING)).num_DLA_cores)
    if cores == 0:
        raise Skip(f"TensorRT {trt.__version__} reports no DLA cores here (Jetson Orin has 2)")
    answer: dict[str, Any] = {"dla_cores": cores}
    for label, int8 in (("fp16", False), ("int8_qdq", True)):
        built = build(conv_onnx(int8=int8), {}, dla_core=0)
        on_dla = [layer for layer in built.get("layers", []) if "DLA" in json.dumps(layer)]
        answer[label] = {
            "parsed": built["parsed"],
            "built": built["built"],
            "errors": built["errors"],
            "can_run_on_dla": built.get("can_run_on_dla"),
            "inspector_layers_mentioning_dla": len(on_dla),
            "inspector_layers": len(built.get("layers", [])),
        }
    answer["passed"] = answer["fp16"]["built"]
    return answer


def q_version_compatible_plugin(args: argparse.Namespace) -> dict[str, Any]:
    from sllen.export.trt.plugin_rewrite import decomposed_to_plugin
    from sllen.runtime import env

    lib = need(args.plugin, "libsllen_attention_plugin.so")
    dynamic = need(args.dynamic_plugin, "libsllen_attention_plugin_dynamic.so")
    env.load_plugin_library(lib)
    work = Path(args.out) / "work"
    work.mkdir(parents=True, exist_ok=True)
    src, dst = work / "vc.onnx", work / "vc.plugin.onnx"
    src.write_bytes(attention_onnx(64, 2))
    decomposed_to_plugin(src, dst)
    built = build(
        dst.read_bytes(),
        attention_shapes(64, 2, (16, 256, 1024)),
        version_compatible=True,
        plugins_to_serialize=[str(dynamic.resolve())],
    )
    answer: dict[str, Any] = {k: built[k] for k in ("parsed", "built", "errors")}
    if built["built"]:
        engine = work / "vc.engine"
        engine.write_bytes(built["serialized"])
        probe = (
            "import sys, tensorrt as trt\n"
            "rt = trt.Runtime(trt.Logger(trt.Logger.WARNING))\n"
            "rt.engine_host_code_allowed = True\n"
            "e = rt.deserialize_cuda_engine(open(sys.argv[1], 'rb').read())\n"
            "print('deserialized' if e is not None else 'refused')\n"
            "sys.exit(0 if e is not None and e.create_execution_context() is not None else 1)\n"
        )
        fresh = subprocess.run(
            [sys.executable, "-c", probe, str(engine)], capture_output=True, text=True, timeout=120
        )
        answer["fresh_process"] = {
            "rc": fresh.returncode,
            "output": (fresh.stdout + fresh.stderr)[-2000:],
        }
    answer["passed"] = built["built"] and answer.get("fresh_process", {}).get("rc") == 0
    return answer


def q_timing_cache(args: argparse.Namespace) -> dict[str, Any]:
    trt = trt_module()
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    config = builder.create_builder_config()
    answer: dict[str, Any] = {}
    try:
        cache = config.create_timing_cache(b"this is not a TensorRT timing cache" * 4)
        answer["garbage_blob"] = "None" if cache is None else f"object {type(cache).__name__}"
        if cache is not None:
            answer["garbage_set_timing_cache"] = bool(config.set_timing_cache(cache, False))
    except Exception as exc:  # noqa: BLE001 - the kind of failure is the answer
        answer["garbage_blob"] = f"raises {type(exc).__name__}: {exc}"
    fresh = config.create_timing_cache(b"")
    answer["empty_blob_set"] = bool(config.set_timing_cache(fresh, False))
    answer["passed"] = answer["empty_blob_set"]
    return answer


# --------------------------------------------------------------------------- driver


def merge(out: Path) -> int:
    questions = {}
    for name in QUESTIONS:
        path = out / "questions" / f"{name}.json"
        if path.is_file():
            questions[name] = json.loads(path.read_text())
    envq = questions.get("environment", {}).get("answer", {})
    record = {
        "schema": SCHEMA,
        "tensorrt": envq.get("tensorrt"),
        "gpu_name": envq.get("gpu_name"),
        "compute_capability": envq.get("compute_capability"),
        "questions": questions,
    }
    (out / "trt_check.json").write_text(json.dumps(record, indent=1) + "\n")
    slug = _slug(f"{record['tensorrt']}-{record['gpu_name']}")
    print(f"record: {out / 'trt_check.json'} (+ {out / 'layers'})")
    print(
        "to keep it as test data: mkdir -p tests/export/data/trt_check/"
        f"{slug} && cp -r {out}/trt_check.json {out}/layers tests/export/data/trt_check/{slug}/"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", choices=[*QUESTIONS, "merge"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plugin", help="libsllen_attention_plugin.so")
    parser.add_argument("--dynamic-plugin", help="libsllen_attention_plugin_dynamic.so")
    args = parser.parse_args()
    if args.question == "merge":
        return merge(args.out)
    (args.out / "questions").mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"question": args.question}
    rc = 0
    try:
        answer = globals()[f"q_{args.question}"](args)
        passed = answer.pop("passed", True)
        record.update(status="PASS" if passed else "FAIL", answer=answer)
        rc = 0 if passed else 1
    except Skip as exc:
        record.update(status="SKIP", reason=str(exc))
        rc = 77
    except Exception as exc:  # noqa: BLE001 - recorded, and the question fails
        record.update(status="FAIL", reason=f"{type(exc).__name__}: {exc}")
        record["traceback"] = traceback.format_exc()
        rc = 1
    (args.out / "questions" / f"{args.question}.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record.get("answer", record.get("reason")), indent=1))
    if rc == 77:
        print(record["reason"])  # the runner reads the reason from the last line
    return rc


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
