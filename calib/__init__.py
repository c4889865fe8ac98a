"""sllen.calib: calibration data, INT8 Q/DQ quantization, FP16 conversion (ONNX only, no torch).

Not built yet (the export issue); the package exists so the import layout of DESIGN.md holds.
"""
