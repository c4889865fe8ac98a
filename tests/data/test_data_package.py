"""The package surface: lazy re-exports, and the numpy-only modules stay free of torch."""

import subprocess
import sys

import pytest

import sllen.data


def test_every_exported_name_resolves():
    for name in sllen.data.__all__:
        assert getattr(sllen.data, name) is not None
    with pytest.raises(AttributeError):
        sllen.data.no_such_name  # noqa: B018


def test_numpy_only_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import sllen.data\n"
        "from sllen.data import generate_scene, synthesize_low, find_pairs\n"
        "import sllen.data.gradient_level, sllen.data.samples, sllen.data.seeding\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
