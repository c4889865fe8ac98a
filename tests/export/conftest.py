"""Shared fixtures of the export tests."""

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def export_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """export_once(model, **export_onnx kwargs): export once per test session.

    Keyed by weights, config and export arguments; the file is alone in its folder."""
    from sllen.export.onnx_export import export_onnx

    def run(model, **kwargs) -> Path:
        h = hashlib.sha256(model.config.to_json().encode() + repr(sorted(kwargs.items())).encode())
        for t in model.state_dict().values():
            h.update(t.numpy().tobytes())
        path = tmp_path_factory.getbasetemp() / f"sllen-export-{h.hexdigest()[:16]}" / "model.onnx"
        if not path.is_file():
            export_onnx(model, path, **kwargs)
        return path

    return run
