"""A fake Backend for the runtime's own logic (batching, tiling, post-processing): it maps
x -> x * 0.5 + 0.25 and records the input shapes it is given. Not a model."""

from __future__ import annotations

import numpy as np

from sllen.runtime.backends.base import Backend, BackendInfo, Outputs


class Recorder(Backend):
    name = "onnxruntime"

    def __init__(self, **info: object) -> None:
        super().__init__()
        self._info = BackendInfo("onnxruntime", "fake", "cpu", "fp32", **info)  # type: ignore[arg-type]
        self.shapes: list[tuple[int, ...]] = []

    @property
    def info(self) -> BackendInfo:
        return self._info

    def _infer(self, x: np.ndarray, segmentation: bool) -> Outputs:
        self.shapes.append(x.shape)
        return Outputs(x * 0.5 + 0.25)
