"""sllen.export: torch -> ONNX (+ simplify, parity check) -> TensorRT engine.

Not built yet (the export issue); the package exists so the import layout of DESIGN.md holds.
"""
