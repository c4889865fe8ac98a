"""sllen.runtime: inference without torch (TensorRT, ONNX Runtime, PyTorch backends).

Imports nothing from the rest of sllen and never torch at module level, so an engine-only
deployment (Jetson) installs numpy, tensorrt, cuda-python and av, not torch. The PyTorch
backend is the one place that imports torch (lazily, when it is chosen).
"""
