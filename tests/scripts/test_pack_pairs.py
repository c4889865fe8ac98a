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


def _extract(chunk: Path, dest: Path) -> None:
    with tarfile.open(chunk) as t:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            t.extractall(dest, filter="data")
        else:
            t.extractall(dest)  # noqa: S202 (our own archive)


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
        _extract(c, unpacked)
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


@pytest.mark.parametrize("folder", ["pairs", "p" * 120])  # a long name takes extra tar headers
def test_no_chunk_is_over_the_limit(tmp_path: Path, folder: str) -> None:
    src = write_sample_pairs(tmp_path / folder, 8, (64, 64), seed=4)
    limit = 5 * 10240 + 9728  # just under a tar record boundary: the padding must count
    out = tmp_path / "out"
    assert pack_pairs.main([str(src), str(out), "--chunk-mib", str(limit / 2**20)]) == 0
    chunks = sorted(out.glob("p*.tar"))
    assert len(chunks) >= 2 and all(c.stat().st_size <= limit for c in chunks)
    for c in chunks:
        _extract(c, tmp_path / "u")
    assert len(list((tmp_path / "u" / folder / "low").iterdir())) == 8


def test_what_webp_cannot_hold_as_sllen_reads_it_goes_unchanged(tmp_path: Path) -> None:
    import png
    from PIL import Image

    src = tmp_path / "pairs"
    for side in ("low", "high"):
        (src / side).mkdir(parents=True)
    rgb16 = np.random.default_rng(1).integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    for side in ("low", "high"):
        png.from_array(rgb16.reshape(10, 36), "RGB;16").save(str(src / side / "a.png"))
    im = Image.fromarray(np.random.default_rng(2).integers(0, 255, (8, 12, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # shown rotated: sllen reads it 12 x 8
    for side in ("low", "high"):
        im.save(src / side / "b.png", exif=exif.tobytes())
    out = tmp_path / "out"
    assert pack_pairs.main([str(src), str(out)]) == 0
    _extract(out / "p1.tar", tmp_path / "u")
    got = tmp_path / "u" / "pairs" / "low"
    assert sorted(p.name for p in got.iterdir()) == ["a.png", "b.webp"]  # 16-bit kept as is
    assert (got / "a.png").read_bytes() == (src / "low" / "a.png").read_bytes()
    assert np.array_equal(read_image(got / "b.webp"), read_image(src / "low" / "b.png"))
    assert read_image(got / "b.webp").shape == (12, 8, 3)
    # A second run into the same folder would leave old chunks beside new ones: refused.
    assert pack_pairs.main([str(src), str(out)]) == 2
