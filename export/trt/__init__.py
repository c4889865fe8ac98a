"""sllen.export.trt: ONNX file -> TensorRT engine, strongly typed, with metadata.

Precision lives in the ONNX file (DESIGN.md): fp32.onnx, fp16.onnx (casts) and int8.onnx
(symmetric Q/DQ). TensorRT only compiles it, so nothing here sets FP16/INT8 builder flags
(removed in TensorRT 11) and every network is strongly typed.

- onnx_info: what the builder reads from an ONNX file (precision, plugin nodes) and refuses;
- build: build_engine (parser, profile, timing cache, DLA, version/hardware compatibility);
- fusion: the engine inspector's layer listing and whether TensorRT fused the attention;
- plugin_rewrite: decomposed MatMul-Softmax-MatMul blocks -> sllen::SllenAttention nodes;
- auto: `--attention auto` (decide_attention, build_engine_auto);
- engine_parity: the engine against its ONNX file in ONNX Runtime, through Polygraphy's runners
  and comparator (optional dependency), with saved inputs/outputs to replay.

The environment checks (TensorRT version, GPU name and compute capability, device selection,
plugin library loading) are sllen.runtime.env, shared with the runtime's TensorRT backend.
Nothing here imports tensorrt at module level: `import sllen.export.trt` works without it.
"""
