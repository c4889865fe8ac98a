"""The SLLEN network (Fig. 2 of the paper) and its weights on disk."""

from sllen.model.io import WeightsError, load_weights, read_config, save_weights
from sllen.model.sllen import SLLEN, SLLENOutput, build_model

__all__ = [
    "SLLEN",
    "SLLENOutput",
    "WeightsError",
    "build_model",
    "load_weights",
    "read_config",
    "save_weights",
]
