"""read_image / write_image / list_images (the float-RGB view of sllen.runtime.images used by
training, evaluation and calibration) on the file kinds users actually have."""

import numpy as np
import pytest
from PIL import Image

from sllen.runtime.images import (
    IMAGE_SUFFIXES,
    ImageError,
    list_images,
    read_image,
    read_picture,
    write_image,
)


def _check_float_image(img, shape):
    assert img.dtype == np.float32
    assert img.shape == shape
    assert img.min() >= 0.0 and img.max() <= 1.0


def test_png_round_trip_is_exact_at_8_bits(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((7, 9, 3)).astype(np.float32)
    write_image(tmp_path / "a.png", img)
    back = read_image(tmp_path / "a.png")
    _check_float_image(back, (7, 9, 3))
    np.testing.assert_array_equal(back, np.round(img * 255) / np.float32(255))


def test_write_accepts_uint8_gray_and_single_channel(tmp_path):
    u8 = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    write_image(tmp_path / "u8.png", u8)
    np.testing.assert_array_equal(read_image(tmp_path / "u8.png") * 255, u8)
    gray = np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32)
    write_image(tmp_path / "g.png", gray)
    write_image(tmp_path / "g1.png", gray[:, :, None])
    for name in ("g.png", "g1.png"):
        back = read_image(tmp_path / name)
        assert np.all(back[..., 0] == back[..., 2])
        np.testing.assert_allclose(back[..., 0], np.round(gray * 255) / 255)


def test_write_clips_floats_and_makes_folders(tmp_path):
    write_image(tmp_path / "sub" / "dir" / "c.png", np.full((2, 2, 3), 1.7, dtype=np.float32))
    assert read_image(tmp_path / "sub" / "dir" / "c.png").min() == 1.0


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    img = np.zeros((4, 4, 3), dtype=np.float32)
    write_image(tmp_path / "x.jpg", img)
    write_image(tmp_path / "x.jpg", img + 0.5)  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "bad.png", np.zeros((4, 4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "bad.xyz", img)
    with pytest.raises(TypeError):
        write_image(tmp_path / "bad.png", np.zeros((4, 4, 3), dtype=np.int32))
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]


def test_grayscale_is_replicated(tmp_path):
    a = np.array([[0, 128], [255, 64]], dtype=np.uint8)
    Image.fromarray(a, mode="L").save(tmp_path / "l.png")
    img = read_image(tmp_path / "l.png")
    _check_float_image(img, (2, 2, 3))
    for c in range(3):
        np.testing.assert_allclose(img[..., c], a / 255.0)


def test_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 100, 50
    rgba[..., 3] = [[0, 255], [128, 0]]
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    img = read_image(tmp_path / "rgba.png")
    np.testing.assert_allclose(img, np.broadcast_to(np.array([200, 100, 50]) / 255, (2, 2, 3)))
    la = np.stack([np.full((2, 2), 77, np.uint8), np.zeros((2, 2), np.uint8)], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image(tmp_path / "la.png"), 77 / 255)


def test_palette_is_expanded(tmp_path):
    im = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8), mode="P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    img = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(img[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(img[0, 1], [0, 1, 0])
    np.testing.assert_array_equal(img[1, 0], [0, 0, 1])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_gray_is_scaled_by_65535(tmp_path, suffix):
    a = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / f"d{suffix}")
    img = read_image(tmp_path / f"d{suffix}")
    _check_float_image(img, (2, 2, 3))
    np.testing.assert_allclose(img[..., 1], a / 65535.0, rtol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((4, 6, 3), dtype=np.uint8)
    a[0, :] = 255  # a white top row
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "o.png", exif=exif)
    img = read_image(tmp_path / "o.png")
    assert img.shape == (6, 4, 3)
    assert img[:, -1].min() > 0.9 and img[:, 0].max() < 0.1  # the top row is now on the right


def test_failures_raise_one_line_errors_naming_the_path(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:300])
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "good.jpg", quality=90)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "good.jpg").read_bytes()[:200])
    for name in ("missing.png", "text.png", "cut.png", "cut.jpg"):
        with pytest.raises((ImageError, FileNotFoundError)) as info:
            read_image(tmp_path / name)
        message = str(info.value)
        assert name in message and "\n" not in message
        assert isinstance(info.value, ValueError if name != "missing.png" else OSError)


def test_list_images_filters_and_sorts(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.tiff", "._a.jpg", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.tiff"]
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_SUFFIXES)
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "nope")


def test_16_bit_rgb_png_keeps_its_precision(tmp_path):
    # Pillow alone reads 48-bit PNGs as 8 bits: training and evaluation read them through the
    # same reader as sllen-run, so a 16-bit ground truth is not quantised to 8 bits.
    import png

    a = np.zeros((2, 3, 3), dtype=np.uint16)
    a[..., 0], a[..., 1], a[..., 2] = 257 * 3 + 1, 40000, 65535
    with open(tmp_path / "rgb16.png", "wb") as f:
        png.from_array(a.reshape(2, 9), "RGB;16").write(f)
    img = read_image(tmp_path / "rgb16.png")
    _check_float_image(img, (2, 3, 3))
    np.testing.assert_allclose(img, a / 65535.0, rtol=1e-6)


def test_float_rgb_tiff_is_read_at_16_bits(tmp_path):
    import tifffile

    a = np.random.default_rng(0).uniform(-0.2, 1.2, (5, 6, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", a, photometric="rgb")  # Pillow cannot open this one
    pic = read_picture(tmp_path / "f.tif")
    assert pic.bits == 16 and pic.rgb.shape == (5, 6, 3)
    np.testing.assert_allclose(pic.rgb, np.clip(a, 0, 1), atol=1 / 65535)


def test_float_tiff_is_taken_as_unit_range(tmp_path):
    a = np.array([[0.0, 0.25], [1.5, -0.5]], dtype=np.float32)
    Image.fromarray(a, mode="F").save(tmp_path / "f.tif")
    img = read_image(tmp_path / "f.tif")
    np.testing.assert_allclose(img[..., 0], np.clip(a, 0, 1), atol=1 / 65535)


def test_write_image_to_pgm_is_grey(tmp_path):
    # a .pgm is grey by definition: colour arrays are written as their Rec. 709 luma
    rgb = np.zeros((2, 3, 3), dtype=np.float32)
    rgb[..., 0] = 1.0  # pure red
    write_image(tmp_path / "r.pgm", rgb)
    with Image.open(tmp_path / "r.pgm") as im:
        assert im.mode == "L"
        assert np.all(np.abs(np.asarray(im, np.int32) - round(0.2126 * 255)) <= 1)
