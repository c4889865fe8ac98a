"""--lle-photos sources: large photos are downscaled by area (JPEGs decoded reduced)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sllen.data.photos import PhotoFolder, downscale, read_photo
from sllen.runtime.errors import InputError
from sllen.runtime.images import ImageError, read_image, write_image


def _stripes(h: int, w: int) -> np.ndarray:
    """One-pixel black/white columns: area averaging makes them mid grey, sampling would not."""
    img = np.zeros((h, w, 3), np.float32)
    img[:, ::2] = 1.0
    return img


def test_downscale_keeps_aspect_and_averages() -> None:
    out = downscale(_stripes(60, 200), 100)
    assert out.shape == (30, 100, 3) and out.dtype == np.float32
    assert np.allclose(out, 0.5, atol=1e-6)
    small = np.random.default_rng(0).random((40, 50, 3), dtype=np.float32)
    assert downscale(small, 100) is small and downscale(small, 0) is small


def test_large_png_is_downscaled_small_kept(tmp_path: Path) -> None:
    write_image(tmp_path / "big.png", _stripes(300, 800))
    write_image(tmp_path / "small.png", _stripes(30, 40))
    big = read_photo(tmp_path / "big.png", 400)
    assert big.shape == (150, 400, 3) and abs(float(big.mean()) - 0.5) < 0.01
    assert read_photo(tmp_path / "small.png", 400).shape == (30, 40, 3)
    assert read_photo(tmp_path / "big.png", 0).shape == (300, 800, 3)  # 0: full size


def test_large_jpeg_is_decoded_reduced_with_the_same_content(tmp_path: Path) -> None:
    # a smooth photo-like picture: the reduced decode matches the full decode, downscaled
    yy, xx = np.mgrid[0:1200, 0:1600].astype(np.float32)
    img = np.stack([xx / 1600, yy / 1200, 0.5 + 0.3 * np.sin(xx / 90) * np.cos(yy / 70)], -1)
    Image.fromarray((img * 255).round().astype(np.uint8)).save(tmp_path / "p.jpg", quality=95)
    fast = read_photo(tmp_path / "p.jpg", 400)
    assert fast.shape == (300, 400, 3)
    slow = downscale(read_image(tmp_path / "p.jpg"), 400)
    assert float(np.abs(fast - slow).mean()) < 0.01


def test_jpeg_rotation_in_exif_is_applied(tmp_path: Path) -> None:
    im = Image.fromarray(np.full((400, 1000, 3), 128, np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: shown portrait
    im.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert read_photo(tmp_path / "r.jpg", 500).shape == (500, 200, 3)


def test_bad_photo_and_bad_size_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageError, match="bad.jpg"):
        read_photo(tmp_path / "bad.jpg", 100)
    with pytest.raises(InputError, match="photo-max-side"):
        PhotoFolder([tmp_path / "bad.jpg"], max_side=-1)
