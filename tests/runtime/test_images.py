"""Still images come back in the form they came in (bit depth, channels, alpha, EXIF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sllen.runtime.images import ImageError, read_picture, write_picture


def roundtrip(tmp_path: Path, name: str, arr: np.ndarray, **save) -> tuple[np.ndarray, object]:
    src = tmp_path / name
    if arr.dtype == np.uint16 and arr.ndim == 3:
        import png

        h, w, c = arr.shape
        png.from_array(arr.reshape(h, w * c), "RGB;16").save(str(src))
    else:
        Image.fromarray(arr).save(src, **save)
    pic = read_picture(src)
    dst = tmp_path / "out" / name
    write_picture(dst, pic, pic.rgb)
    return np.asarray(Image.open(dst)), pic


def test_rgb_png_is_lossless(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out, pic = roundtrip(tmp_path, "a.png", arr)
    assert pic.bits == 8 and not pic.gray
    assert np.array_equal(out, arr)


def test_gray_stays_gray(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    out, pic = roundtrip(tmp_path, "g.png", arr)
    assert pic.gray and out.shape == (20, 30)
    assert np.abs(out.astype(int) - arr).max() <= 1


def test_rgba_keeps_alpha(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    out, pic = roundtrip(tmp_path, "a.png", arr)
    assert out.shape == (20, 30, 4)
    assert np.array_equal(out[..., 3], arr[..., 3])
    assert np.array_equal(out[..., :3], arr[..., :3])


def test_16bit_gray_and_rgb(tmp_path: Path) -> None:
    g = np.random.default_rng(0).integers(0, 65536, (10, 12), dtype=np.uint16)
    out, pic = roundtrip(tmp_path, "g16.png", g)
    assert pic.bits == 16 and np.abs(out.astype(int) - g).max() <= 1
    rgb = np.random.default_rng(1).integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    src = tmp_path / "rgb16.png"
    import png

    png.from_array(rgb.reshape(10, 36), "RGB;16").save(str(src))
    pic = read_picture(src)
    assert pic.bits == 16
    write_picture(tmp_path / "o" / "rgb16.png", pic, pic.rgb)
    w, h, rows, meta = png.Reader(filename=str(tmp_path / "o" / "rgb16.png")).asDirect()
    back = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(10, 12, 3)
    assert meta["bitdepth"] == 16 and np.array_equal(back, rgb)


def test_16bit_tiff(tmp_path: Path) -> None:
    import tifffile

    rgb = np.random.default_rng(2).integers(0, 65536, (8, 9, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", rgb, photometric="rgb")
    pic = read_picture(tmp_path / "a.tif")
    write_picture(tmp_path / "o" / "a.tif", pic, pic.rgb)
    assert np.array_equal(tifffile.imread(tmp_path / "o" / "a.tif"), rgb)


def test_jpeg_exif_orientation_applied(tmp_path: Path) -> None:
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    exif[0x010F] = "TestCam"
    im.save(tmp_path / "p.jpg", exif=exif.tobytes(), quality=95)
    pic = read_picture(tmp_path / "p.jpg")
    assert pic.size == (20, 10)  # upright, as the user sees it
    write_picture(tmp_path / "o" / "p.jpg", pic, pic.rgb)
    out = Image.open(tmp_path / "o" / "p.jpg")
    assert out.size == (10, 20)
    assert out.getexif().get(0x0112) is None and out.getexif().get(0x010F) == "TestCam"


@pytest.mark.parametrize("content", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_bad_files_one_line(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "x.png"
    p.write_bytes(content)
    with pytest.raises(ImageError) as e:
        read_picture(p)
    assert "\n" not in str(e.value) and "x.png" in str(e.value)


def test_unwritable_output_leaves_nothing(tmp_path: Path) -> None:
    arr = np.zeros((4, 4, 3), np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    pic = read_picture(tmp_path / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageError, match="cannot write"):
        write_picture(blocker / "a.png", pic, pic.rgb)
    out = tmp_path / "o"
    out.mkdir()
    with pytest.raises(Exception):  # noqa: B017 - any failure mid-save
        write_picture(out / "a.png", pic, np.zeros((1, 4, 4, 3), np.float32))
    assert list(out.iterdir()) == []


def _icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp"])
def test_16bit_gray_to_an_8bit_format_keeps_its_values(tmp_path: Path, suffix: str) -> None:
    # Pillow writes I;16 as white WebP or refuses it as JPEG: the 8-bit formats get 8 bits.
    g = np.random.default_rng(0).integers(0, 20000, (16, 24), dtype=np.uint16)
    Image.fromarray(g).save(tmp_path / "g16.png")
    pic = read_picture(tmp_path / "g16.png")
    write_picture(tmp_path / f"o{suffix}", pic, pic.rgb)
    out = np.asarray(Image.open(tmp_path / f"o{suffix}").convert("L"), np.int32)
    assert np.abs(out - (g >> 8)).mean() < 2  # lossy JPEG/WebP: close, not exact


def test_16bit_files_keep_icc_profile_and_resolution(tmp_path: Path) -> None:
    import png
    import tifffile

    icc, rng = _icc(), np.random.default_rng(0)
    rgb = rng.integers(0, 65536, (8, 9, 3), dtype=np.uint16)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png", icc_profile=icc, dpi=(300, 300))
    tifffile.imwrite(
        tmp_path / "a.tif", rgb, photometric="rgb", iccprofile=icc, resolution=(300, 300)
    )
    buf = tmp_path / "plain.png"
    png.from_array(rgb.reshape(8, 27), "RGB;16").save(str(buf))
    pic = read_picture(buf)
    pic.info.update(icc_profile=icc, dpi=(300.0, 300.0))
    write_picture(tmp_path / "rgb.png", pic, pic.rgb)
    for name in ("g.png", "a.tif", "rgb.png"):
        pic = read_picture(tmp_path / name)
        assert pic.bits == 16 and pic.info["icc_profile"] == icc, name
        assert np.allclose(pic.info["dpi"], 300, atol=0.01), name
        write_picture(tmp_path / "o" / name, pic, pic.rgb)
        back = read_picture(tmp_path / "o" / name)
        assert back.bits == 16 and back.info["icc_profile"] == icc, name
        assert np.allclose(back.info["dpi"], 300, atol=0.01), name
        assert np.array_equal(back.rgb, pic.rgb), name


def test_cmyk_jpeg_comes_out_rgb_without_its_cmyk_profile(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 60, (12, 16, 3), dtype=np.uint8)
    fake_cmyk = bytearray(_icc())
    fake_cmyk[16:20] = b"CMYK"  # a profile that says CMYK (ImageCms cannot use this one)
    Image.fromarray(arr).convert("CMYK").save(tmp_path / "c.jpg", icc_profile=bytes(fake_cmyk))
    pic = read_picture(tmp_path / "c.jpg")
    assert "icc_profile" not in pic.info
    write_picture(tmp_path / "o" / "c.jpg", pic, pic.rgb)
    out = Image.open(tmp_path / "o" / "c.jpg")
    assert out.mode == "RGB" and "icc_profile" not in out.info


def test_16bit_cmyk_tiff_comes_out_rgb_without_its_profile(tmp_path: Path) -> None:
    import tifffile

    cmyk_icc = bytearray(_icc())
    cmyk_icc[16:20] = b"CMYK"
    ink = np.zeros((6, 7, 4), np.uint16)
    ink[..., 0] = 65535  # full cyan, no black: (0, 1, 1) in RGB
    tifffile.imwrite(tmp_path / "c.tif", ink, photometric="separated", iccprofile=bytes(cmyk_icc))
    pic = read_picture(tmp_path / "c.tif")
    assert pic.alpha is None and "icc_profile" not in pic.info
    assert np.allclose(pic.rgb[0, 0], [0, 1, 1])


def test_odd_metadata_never_costs_the_pixels(tmp_path: Path) -> None:
    import tifffile

    rgb = np.full((4, 5, 3), 30000, np.uint16)
    zero = [(tag, 5, 1, (300, 0), True) for tag in (282, 283)]  # X/YResolution 300/0
    tifffile.imwrite(tmp_path / "z.tif", rgb, photometric="rgb", resolution=None, extratags=zero)
    pic = read_picture(tmp_path / "z.tif")
    assert "dpi" not in pic.info and pic.rgb.shape == (4, 5, 3)


def test_cmyk_jpeg_goes_through_its_profile(tmp_path: Path, monkeypatch) -> None:
    # No CMYK profile ships with Pillow (ImageCms makes sRGB, LAB and XYZ only), so the
    # littleCMS transform is replaced here: this checks that sllen hands it the file's profile.
    from PIL import ImageCms

    seen: list[object] = []
    icc = b"ICCP" + _icc()  # before the patch below

    def transform(im, source, target, outputMode=None):  # noqa: N803 (ImageCms's name)
        seen.append((im.mode, source, outputMode))
        return Image.new("RGB", im.size, (10, 20, 30))

    monkeypatch.setattr(ImageCms, "profileToProfile", transform)
    monkeypatch.setattr(ImageCms, "ImageCmsProfile", lambda f: ("profile", f.read()[:4]))
    arr = np.zeros((4, 6, 3), np.uint8)
    Image.fromarray(arr).convert("CMYK").save(tmp_path / "c.jpg", icc_profile=icc)
    pic = read_picture(tmp_path / "c.jpg")
    assert seen == [("CMYK", ("profile", b"ICCP"), "RGB")]
    assert np.allclose(pic.rgb[0, 0] * 255, [10, 20, 30])
