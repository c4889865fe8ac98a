"""The four import packages (sllen, sllen.export, sllen.calib, sllen.runtime), and the
torch-free promise of sllen and sllen.runtime."""

import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["sllen", "sllen.export", "sllen.calib", "sllen.runtime"])
def test_package_imports(module: str) -> None:
    r = _run(f"import {module}")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("module", ["sllen", "sllen.runtime", "sllen.metrics"])
def test_light_imports_do_not_load_torch(module: str) -> None:
    r = _run(f"import sys, {module}; print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_runtime_imports_with_torch_unimportable() -> None:
    # A deployment without torch: block the import and check sllen.runtime still loads.
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import sllen, sllen.runtime, sllen.metrics\nprint('ok')"
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_subpackages_map_to_their_folders() -> None:
    import sllen.calib
    import sllen.export
    import sllen.runtime

    for mod, folder in [
        (sllen.export, "export"),
        (sllen.calib, "calib"),
        (sllen.runtime, "runtime"),
    ]:
        assert mod.__file__.replace("\\", "/").endswith(f"/{folder}/__init__.py")


def test_python_started_in_the_clone_finds_the_mapped_subpackages() -> None:
    # A plain (non-editable) install, then `python` in the clone's folder: the clone's sllen/
    # comes first on sys.path and holds no runtime/ (was: No module named 'sllen.runtime'
    # for the README's Python snippets, python -m sllen and torchrun -m sllen.cli.train).
    # The editable finder of this test environment is taken away to stand for that install.
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "sys.meta_path = [f for f in sys.meta_path if 'Editable' not in repr(f)]\n"
        "import sllen.runtime, sllen.export, sllen.calib, sllen.runtime.video\n"
        "print(sllen.runtime.__file__)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == root / "runtime" / "__init__.py"
