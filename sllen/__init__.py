"""sllen: SLLEN low-light enhancement, from training to TensorRT deployment.

Importing sllen stays light (no torch): the deployment runtime (sllen.runtime) must load on
machines that have only numpy, onnxruntime or TensorRT.
"""

from pathlib import Path

__version__ = "0.1.0"

# In a clone, sllen.runtime, sllen.export and sllen.calib live beside this folder (runtime/,
# export/, calib/; pyproject's package-dir maps them into the package on install). Python
# started in the clone's folder imports this folder before the installed package, and then
# found no sllen.runtime: the clone's root is where they are.
_root = Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "runtime" / "__init__.py").is_file():
    __path__.append(str(_root))
