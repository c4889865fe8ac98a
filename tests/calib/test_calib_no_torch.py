"""sllen.calib runs without torch: frames, FP16, INT8 and the Q/DQ check in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    import numpy as np, onnx
    from onnx import TensorProto, helper, numpy_helper

    import sllen.calib
    from sllen.calib.fp16 import convert_fp16
    from sllen.calib.frames import load_calibration_frames, synthetic_calibration_frames
    from sllen.calib.int8 import quantize_int8
    from sllen.calib.qdq_check import inspect_qdq
    from sllen.runtime.images import write_image

    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    w = lambda name, shape: numpy_helper.from_array(
        (0.3 * rng.standard_normal(shape)).astype(np.float32), name)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
         helper.make_node("Conv", ["r1", "w2"], ["c2"], name="head"),
         helper.make_node("Sigmoid", ["c2"], ["output"], name="sigmoid")],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [w("w1", (8, 3, 3, 3)), w("w2", (3, 8, 1, 1))])
    src = tmp / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), src)

    write_image(tmp / "a.png", rng.random((32, 32, 3)).astype(np.float32) * 0.2)
    frames = np.concatenate([load_calibration_frames([tmp / "a.png"]),
                             synthetic_calibration_frames(4, (32, 32))])
    assert convert_fp16(src, tmp / "h.onnx", frames)["passes_budget"]
    report = quantize_int8(src, tmp / "q.onnx", frames, method="percentile")
    assert inspect_qdq(report["path"])["zero_points_all_zero"]
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print("TORCH:", loaded[:5])
    sys.exit(1 if loaded else 0)
    """
)


def test_calib_never_imports_torch() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
