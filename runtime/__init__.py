"""sllen.runtime: inference without torch (TensorRT, ONNX Runtime, PyTorch backends).

Imports nothing from the rest of sllen and never torch at module level, so an engine-only
deployment (Jetson) installs numpy, tensorrt, cuda-python and av, not torch. The PyTorch
backend is the one place that imports torch (lazily, when it is chosen).
"""

from typing import Any

__all__ = ["EnhancerSpec", "FrameEnhancer", "open_enhancer"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import sllen.runtime` stays cheap (the API module loads numpy and backends).
    if name in __all__:
        from sllen.runtime import api

        return getattr(api, name)
    raise AttributeError(f"module 'sllen.runtime' has no attribute {name!r}")
