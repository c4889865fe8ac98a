"""Fixtures shared across the test packages."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# pytest-xdist (README's test command, `-n auto`) runs one worker process per core: one torch
# (OpenMP) thread in each, and in the subprocesses the tests start. With torch's default of
# a thread per core in every worker, the two workers' threads spun against each other on 2
# cores. Set before any test module imports torch, which reads it once; OpenBLAS and sllen's
# calibration sessions (ONNX Runtime, calib/graph.py's thread_count) read it too.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

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


# tests/fakes: modules shared by the test packages (the one fake TensorRT, tiny ONNX graphs,
# the in-process CLI runner), imported by their plain names (`from fake_tensorrt import
# FakeBuffers`) whatever pytest's import mode; the folder holds nothing else, so nothing else
# becomes importable.
sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))


@pytest.fixture
def fake_trt(monkeypatch):
    """install(version="10.3.0", **options) -> a fresh fake `tensorrt` (a MOCK: TensorRT cannot
    be installed here) in sys.modules; see tests/fakes/fake_tensorrt.py for the options.

    Plugin libraries are "loaded" by recording ("dlopen", path) in the fake's calls, and the
    process-wide plugin registry (sllen.runtime.env) starts empty.
    """
    import fake_tensorrt

    from sllen.runtime import env

    monkeypatch.setattr(env, "_loaded_plugins", {})

    def install(version: str = "10.3.0", **options):
        trt = fake_tensorrt.make_fake_trt(version, **options)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(env, "_dlopen", lambda path: trt.calls.append(("dlopen", str(path))))
        return trt

    return install


# Markers (registered in pyproject): `gpu` and `tensorrt` go on every test that skips without
# a CUDA GPU or a real TensorRT (read from its skipif reason, so a new test cannot forget it),
# `slow` on the few that take tens of seconds. `pytest -m "not slow"` is the quick loop;
# CI runs everything.
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for mark in item.iter_markers("skipif"):
            reason = str(mark.kwargs.get("reason", ""))
            if "TensorRT" in reason:
                item.add_marker(pytest.mark.tensorrt)
            if "CUDA" in reason or "GPU" in reason:
                item.add_marker(pytest.mark.gpu)
