"""scripts/gpu/pack_pairs.py: chunks within their size, pixels unchanged after the round trip."""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

import numpy as np
import pytest

from sllen.data.samples import write_sample_pairs
from sllen.runtime.images import read_image

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pack_pairs", REPO / "scripts/gpu/pack_pairs.py")
assert _spec and _spec.loader
pack_pairs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pack_pairs)


def test_chunks_hold_every_pair_losslessly_within_the_size(tmp_path: Path) -> None:
    src = write_sample_pairs(tmp_path / "pairs", 6, (96, 128), seed=2)
    extra = tmp_path / "init.bin"
    extra.write_bytes(b"weights" * 100)
    chunk_mib = 0.06
    assert (
        pack_pairs.main(
            [str(src), str(tmp_path / "out"), "--chunk-mib", str(chunk_mib), "--extra", str(extra)]
        )
        == 0
    )
    chunks = sorted((tmp_path / "out").glob("p*.tar"))
    assert len(chunks) >= 2 and not list((tmp_path / "out").glob("*.tmp"))
    assert all(c.stat().st_size <= chunk_mib * 2**20 for c in chunks)
    unpacked = tmp_path / "unpacked"
    for c in chunks:
        with tarfile.open(c) as t:
            t.extractall(unpacked, filter="data")
    assert (unpacked / "init.bin").read_bytes() == extra.read_bytes()
    for side in ("low", "high"):
        originals = sorted((src / side).iterdir())
        packed = sorted((unpacked / src.name / side).iterdir())
        assert [p.stem for p in packed] == [p.stem for p in originals]
        assert {p.suffix for p in packed} == {".webp"}
        for a, b in zip(originals, packed, strict=True):
            assert np.array_equal(read_image(a), read_image(b)), b.name


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert pack_pairs.main([str(tmp_path / "none"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
