"""sllen.export: torch -> ONNX (+ simplify, parity check) -> TensorRT engine.

``sllen-export`` runs :func:`sllen.export.pipeline.run_export`; the TensorRT engine build lives
in :mod:`sllen.export.trt`. Uses the model (torch) and sllen.calib; writes the files that
sllen.runtime reads.
"""
