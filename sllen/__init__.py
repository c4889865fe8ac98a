"""sllen: SLLEN low-light enhancement, from training to TensorRT deployment.

Importing sllen stays light (no torch): the deployment runtime (sllen.runtime) must load on
machines that have only numpy, onnxruntime or TensorRT.
"""

__version__ = "0.1.0"
