"""sllen.runtime.attention_kernel on a CPU machine: the numpy reference, finding and loading the
kernel library, and the fallback to torch's scaled_dot_product_attention.

The kernel itself is checked by ctest (runtime/csrc/tests): on a CPU emulator everywhere, on the
GPU where there is one. The GPU-only test at the bottom runs where torch sees a CUDA device and
the library is built.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sllen.runtime import attention_kernel as ak

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No library anywhere: empty search folders, no environment variables."""
    monkeypatch.delenv(ak.ENV_LIBRARY, raising=False)
    monkeypatch.delenv(ak.ENV_PLUGIN, raising=False)
    monkeypatch.setattr(ak, "_search_dirs", lambda: [tmp_path / "build", tmp_path / "lib"])
    monkeypatch.setattr(ak, "_cache", {"path": None, "lib": None, "reason": ""})
    return tmp_path


# --------------------------------------------------------------------------- reference


@pytest.mark.parametrize(
    ("heads", "tokens", "head_dim", "scale"),
    [(2, 37, 64, 0.125), (1, 130, 512, 512**-0.5), (3, 1, 32, 1.0), (1, 70, 128, 1.0)],
)
def test_reference_matches_torch_sdpa(heads, tokens, head_dim, scale) -> None:
    g = torch.Generator().manual_seed(tokens)
    q, k, v = (torch.randn(2, heads, tokens, head_dim, generator=g) for _ in range(3))
    want = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=scale)
    got = ak.reference_attention(q.numpy(), k.numpy(), v.numpy(), scale, chunk=16)
    assert got.shape == tuple(want.shape) and got.dtype == np.float64
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


def test_reference_is_stable_for_large_logits() -> None:
    q = np.full((1, 4, 8), 100.0)
    k = np.full((4, 8), 100.0)  # logits 80,000: a naive exp overflows
    v = np.arange(32, dtype=np.float64).reshape(4, 8)
    out = ak.reference_attention(q, k, v, 1.0)
    np.testing.assert_allclose(out, np.broadcast_to(v.mean(axis=0), out.shape))


# --------------------------------------------------------------------------- fallback


def test_no_library_falls_back_to_sdpa(nowhere) -> None:
    assert ak.find_library() is None and ak.find_plugin_library() is None
    assert ak.load() is None and not ak.available()
    line = ak.status()
    assert line.startswith("torch scaled_dot_product_attention: no libsllen_attention.so found")
    assert "cmake -S . -B build && cmake --build build" in line and ak.ENV_LIBRARY in line
    with pytest.raises(RuntimeError, match="unavailable: no libsllen_attention.so found"):
        ak.kernel_attention(torch.zeros(1, 1, 2, 64), torch.zeros(1, 1, 2, 64), None, 1.0)


def test_missing_environment_path_is_reported_not_replaced(nowhere, monkeypatch) -> None:
    # A library in the build folder must not hide a wrong explicit setting.
    (nowhere / "build").mkdir()
    (nowhere / "build" / "libsllen_attention.so").write_bytes(b"")
    missing = nowhere / "nope" / "libsllen_attention.so"
    monkeypatch.setenv(ak.ENV_LIBRARY, str(missing))
    assert ak.find_library() is None
    assert ak.status() == (
        f"torch scaled_dot_product_attention: {ak.ENV_LIBRARY}={missing} does not exist"
    )
    monkeypatch.setenv(ak.ENV_LIBRARY, str(nowhere))  # a folder without the library
    assert "is a folder without libsllen_attention.so" in ak.status()


def test_search_order(nowhere, monkeypatch) -> None:
    build, lib = nowhere / "build", nowhere / "lib"
    build.mkdir()
    lib.mkdir()
    (lib / "libsllen_attention.so").write_bytes(b"")
    assert ak.find_library() == lib / "libsllen_attention.so"
    (build / "libsllen_attention.so").write_bytes(b"")
    assert ak.find_library() == build / "libsllen_attention.so"
    (build / "libsllen_attention_plugin.so").write_bytes(b"")
    assert ak.find_plugin_library() == build / "libsllen_attention_plugin.so"
    monkeypatch.setenv(ak.ENV_LIBRARY, str(lib))
    assert ak.find_library() == lib / "libsllen_attention.so"


def test_a_file_that_is_not_a_library_is_reported(nowhere, monkeypatch) -> None:
    bogus = nowhere / "libsllen_attention.so"
    bogus.write_text("not an ELF file")
    monkeypatch.setenv(ak.ENV_LIBRARY, str(bogus))
    assert ak.load() is None and not ak.available()
    assert ak.status().startswith(f"torch scaled_dot_product_attention: cannot load {bogus}")


def test_build_folder_of_the_checkout_is_searched() -> None:
    dirs = ak._search_dirs()
    assert dirs[0] == REPO / "build"
    assert ak._PACKAGE_DIR / "lib" in dirs


def test_runtime_module_does_not_import_torch() -> None:
    code = (
        "import sys; import sllen.runtime.attention_kernel as ak; ak.status(); "
        "print('torch' in sys.modules, 'sllen.model' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # status() imports torch only when a library was found (to ask for a CUDA device)
    assert r.stdout.split()[1] == "False"


# --------------------------------------------------------------------------- the real library

BUILT = ak._locate(ak.ENV_LIBRARY, ak.LIBRARY_NAMES)[0]


@pytest.mark.skipif(BUILT is None, reason=f"kernel library not built ({ak.BUILD_HINT})")
def test_built_library_binds_and_refuses_bad_arguments_without_a_gpu() -> None:
    lib = ctypes.CDLL(str(BUILT))
    ak._bind(lib)
    assert lib.sllen_attention_api_version() == ak.API_VERSION
    for d in ak.SUPPORTED_HEAD_DIMS:
        assert lib.sllen_attention_supported(d, 0) == 1 and lib.sllen_attention_supported(d, 1)
    assert lib.sllen_attention_supported(48, 1) == 0 and lib.sllen_attention_supported(64, 7) == 0
    # Rejected before any CUDA call, so this runs on a CPU-only machine too.
    rc = lib.sllen_attention_forward(None, None, None, None, 1, 2, 10, 48, 1.0, 1, None)
    assert rc == 2 and b"head_dim 48" in lib.sllen_attention_last_error()
    assert lib.sllen_attention_forward(None, None, None, None, 1, 2, 0, 64, 1.0, 1, None) == 0


needs_gpu = pytest.mark.skipif(
    not torch.cuda.is_available() or BUILT is None, reason="needs a CUDA GPU and the built kernel"
)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("head_dim", [64, 512])
def test_kernel_matches_sdpa_on_gpu(dtype, head_dim) -> None:
    assert ak.available(), ak.status()
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (
        torch.randn(1, 2, 1000, head_dim, device="cuda", dtype=dtype, generator=g) for _ in range(3)
    )
    scale = head_dim**-0.5
    with torch.no_grad():
        got = ak.kernel_attention(q, k, v, scale).float()
        want = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=scale)
    tol = 2e-3 if dtype == torch.float16 else 2e-5
    torch.testing.assert_close(got, want.float(), atol=tol, rtol=10 * tol)
