"""Fixtures shared across the test packages."""

from __future__ import annotations

import pytest

# Python source that makes torch unimportable in a subprocess: the deployment paths
# (sllen-run, sllen-bench on ONNX Runtime) must work without torch.
BLOCK_TORCH = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


@pytest.fixture
def block_torch() -> str:
    return BLOCK_TORCH
