"""Still images come back in the form they came in (bit depth, channels, alpha, EXIF)."""

from __future__ import annotations

import io
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


# --- the file kinds a new-user walkthrough found broken: alpha, EXIF and rotation at 16 bits


def _camera_exif(orientation: int | None = None, endian: str = "<") -> bytes:
    """A camera's EXIF as Pillow holds it: IFD0 text, an Exif and a GPS sub-IFD."""
    from PIL.TiffImagePlugin import IFDRational

    exif = Image.Exif()
    exif.endian = endian
    exif.update(TEXT_TAGS)
    exif[531] = 1  # YCbCrPositioning: a camera JPEG's own IFD0 tag, kept as it was
    if orientation is not None:
        exif[0x0112] = orientation
    exif.get_ifd(0x8769).update({33434: IFDRational(1, 100), 34855: 800})  # exposure, ISO
    exif.get_ifd(0x8825)[1] = "N"  # GPSLatitudeRef
    return exif.tobytes()


TEXT_TAGS = {
    270: "A night street",
    271: "TestCam",
    272: "M1",
    305: "Editor 2",
    306: "2024:05:06 07:08:09",
    315: "Ann",
    316: "host",
    33432: "(c) Ann",
}
# how the source file was stored: never part of another file's EXIF
STRUCTURE = {254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 338, 339, 34675}


def _assert_camera_exif(exif: Image.Exif, *, tiff_ifd0: bool = False) -> None:
    """The camera's EXIF less its rotation (and, but in a TIFF's own IFD0, no structure)."""
    assert {t: exif.get(t) for t in TEXT_TAGS} == TEXT_TAGS
    assert exif.get_ifd(0x8769)[33434] == 0.01 and exif.get_ifd(0x8769)[34855] == 800
    assert exif.get_ifd(0x8825)[1] == "N"
    assert 0x0112 not in exif and (tiff_ifd0 or not STRUCTURE & set(exif))


def _png16(path: Path, arr: np.ndarray, mode: str, exif: bytes | None = None) -> None:
    """A 16-bit PNG written by pypng, with an eXIf chunk before IDAT (no b"Exif\\0\\0")."""
    import png

    buf = io.BytesIO()
    png.from_array(arr.reshape(arr.shape[0], -1), mode).write(buf)
    chunks = list(png.Reader(bytes=buf.getvalue()).chunks())
    if exif is not None:
        chunks.insert(1, (b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    with open(path, "wb") as f:
        png.write_chunks(f, chunks)


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("channels", [2, 4])
def test_16bit_tiff_with_alpha_round_trips(tmp_path: Path, channels: int, planar: bool) -> None:
    import tifffile

    # 3 rows: planar (C, H, W) storage must not be told from contiguous by its shape
    arr = np.random.default_rng(channels).integers(0, 65536, (3, 7, channels), dtype=np.uint16)
    stored = np.moveaxis(arr, -1, 0) if planar else arr
    tifffile.imwrite(
        tmp_path / "a.tif",
        stored,
        photometric="minisblack" if channels == 2 else "rgb",
        planarconfig="separate" if planar else "contig",
        extrasamples=["unassalpha"],
    )
    pic = read_picture(tmp_path / "a.tif")
    assert pic.bits == 16 and pic.gray == (channels == 2)
    assert pic.alpha is not None and np.array_equal(pic.alpha, arr[..., -1])
    write_picture(tmp_path / "o" / "a.tif", pic, pic.rgb)
    with tifffile.TiffFile(tmp_path / "o" / "a.tif") as tif:
        page = tif.pages.first
        assert page.extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)
        back = page.asarray()
    assert back.dtype == np.uint16 and np.array_equal(back[..., -1], arr[..., -1])
    assert np.abs(back[..., :-1].astype(int) - arr[..., :-1]).max() <= 1


@pytest.mark.parametrize("kind", ["tif", "png"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_files_turn_upright_as_exif_transpose_does(
    tmp_path: Path, kind: str, orientation: int
) -> None:
    import tifffile
    from PIL import ImageOps

    rgba8 = np.random.default_rng(orientation).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba8).save(buf, format="PNG", exif=_camera_exif(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(buf)))  # Pillow, at 8 bits
    rgba16 = rgba8.astype(np.uint16) * 257
    src = tmp_path / f"o.{kind}"
    if kind == "tif":
        tags = [(274, "H", 1, orientation, True), (271, "s", 0, "TestCam", True)]
        tifffile.imwrite(
            src, rgba16, photometric="rgb", extrasamples=["unassalpha"], extratags=tags
        )
    else:
        _png16(src, rgba16, "RGBA;16", _camera_exif(orientation))
    pic = read_picture(src)
    assert pic.bits == 16 and pic.alpha is not None
    np.testing.assert_array_equal(np.round(pic.rgb * 255), expected[..., :3])
    np.testing.assert_array_equal(pic.alpha, expected[..., 3].astype(np.uint16) * 257)
    kept = Image.Exif()
    kept.load(pic.info["exif"])  # the rest of the EXIF stays, without the rotation
    assert kept[0x010F] == "TestCam" and 0x0112 not in kept and not STRUCTURE & set(kept)


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("source", ["jpg", "png16"])
def test_tiff_outputs_keep_the_exif(tmp_path: Path, source: str, endian: str) -> None:
    import tifffile

    rgb8 = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    exif = _camera_exif(endian=endian)
    if source == "jpg":
        Image.fromarray(rgb8).save(tmp_path / "s.jpg", exif=exif)
    else:
        _png16(tmp_path / "s.png16", rgb8.astype(np.uint16) * 257, "RGB;16", exif)
        (tmp_path / "s.png16").rename(tmp_path / "s.png")
    pic = read_picture(next(tmp_path.glob("s.*")))
    assert pic.bits == (8 if source == "jpg" else 16)
    write_picture(tmp_path / "o.tif", pic, pic.rgb)
    with open(tmp_path / "o.tif", "rb") as f:
        written = Image.Exif()
        written.load_from_fp(f)
        _assert_camera_exif(written, tiff_ifd0=True)  # with the sub-IFDs tifffile cannot write
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        page = tif.pages.first
        assert page.tags["ExifTag"].value["ExposureTime"] == (1, 100)
        assert page.asarray().dtype == (np.uint8 if pic.bits == 8 else np.uint16)
    back = read_picture(tmp_path / "o.tif")
    assert np.array_equal(back.rgb, pic.rgb)
    kept = Image.Exif()
    kept.load(back.info["exif"])
    _assert_camera_exif(kept)


@pytest.mark.parametrize("mode", ["RGB;16", "LA;16", "L;16"])
def test_16bit_png_outputs_keep_the_exif_before_idat(tmp_path: Path, mode: str) -> None:
    import png

    channels = {"RGB;16": 3, "LA;16": 2, "L;16": 1}[mode]
    arr = np.random.default_rng(1).integers(0, 65536, (5, 6, channels), dtype=np.uint16)
    _png16(tmp_path / "s.png", arr, mode, _camera_exif(6))
    pic = read_picture(tmp_path / "s.png")
    assert pic.bits == 16 and pic.size == (6, 5)  # upright
    write_picture(tmp_path / "o" / "s.png", pic, pic.rgb)
    chunks = list(png.Reader(filename=str(tmp_path / "o" / "s.png")).chunks())
    kinds = [kind for kind, _ in chunks]
    assert kinds.count(b"eXIf") == 1 and kinds.index(b"eXIf") < kinds.index(b"IDAT")
    assert dict(chunks)[b"eXIf"][:4] in (b"II*\x00", b"MM\x00*")  # no b"Exif\0\0" prefix
    with Image.open(tmp_path / "o" / "s.png") as im:
        _assert_camera_exif(im.getexif())
    assert read_picture(tmp_path / "o" / "s.png").size == (6, 5)  # not turned twice


@pytest.mark.parametrize("bits", [8, 16])
def test_tiff_structure_tags_stay_out_of_other_files_exif(tmp_path: Path, bits: int) -> None:
    import tifffile

    rgb = np.random.default_rng(2).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    if bits == 8:
        Image.fromarray(rgb).save(tmp_path / "s.tif", exif=_camera_exif(6))
    else:
        tags = [(274, "H", 1, 6, True), (271, "s", 0, "TestCam", True)]
        tifffile.imwrite(tmp_path / "s.tif", rgb.astype(np.uint16) * 257, extratags=tags)
    pic = read_picture(tmp_path / "s.tif")
    assert pic.bits == bits and pic.size == (6, 4)
    for name in ("o.jpg", "o.png", "o.webp"):
        write_picture(tmp_path / name, pic, pic.rgb)
        with Image.open(tmp_path / name) as im:
            exif = im.getexif()
            assert im.size == (4, 6) and exif[271] == "TestCam", name
            assert not STRUCTURE & set(exif) and 0x0112 not in exif, name
            assert 270 not in exif or not exif[270].startswith('{"shape"'), name  # tifffile's


def test_jpeg_keeps_every_exif_tag_but_the_rotation(tmp_path: Path) -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "s.jpg", exif=_camera_exif(3))
    pic = read_picture(tmp_path / "s.jpg")
    write_picture(tmp_path / "o.jpg", pic, pic.rgb)
    with Image.open(tmp_path / "s.jpg") as src, Image.open(tmp_path / "o.jpg") as out:
        assert set(out.getexif()) == set(src.getexif()) - {0x0112}
        _assert_camera_exif(out.getexif())


def test_16bit_grey_alpha_png_stays_16bit(tmp_path: Path) -> None:
    import png

    la = np.random.default_rng(3).integers(0, 65536, (5, 7, 2), dtype=np.uint16)
    _png16(tmp_path / "la.png", la, "LA;16")
    pic = read_picture(tmp_path / "la.png")
    assert pic.bits == 16 and pic.gray and pic.alpha is not None
    assert np.array_equal(pic.alpha, la[..., 1])
    np.testing.assert_allclose(pic.rgb[..., 1], la[..., 0] / 65535.0, rtol=1e-6)
    write_picture(tmp_path / "o" / "la.png", pic, pic.rgb)
    _, _, rows, meta = png.Reader(filename=str(tmp_path / "o" / "la.png")).asDirect()
    back = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(5, 7, 2)
    assert meta["bitdepth"] == 16 and meta["greyscale"] and meta["alpha"]
    assert np.array_equal(back[..., 1], la[..., 1])
    assert np.abs(back[..., 0].astype(int) - la[..., 0]).max() <= 1


@pytest.mark.parametrize("suffix", [".bmp", ".ppm", ".pgm", ".jpg"])
@pytest.mark.parametrize("mode", ["LA", "RGBA", "RGB"])
def test_formats_without_alpha_drop_it_and_pgm_is_grey(
    tmp_path: Path, mode: str, suffix: str
) -> None:
    from sllen.runtime.images import REC709_LUMA

    arr = np.random.default_rng(4).integers(0, 256, (6, 8, len(mode)), dtype=np.uint8)
    Image.fromarray(arr, mode).save(tmp_path / "s.png")
    pic = read_picture(tmp_path / "s.png")
    write_picture(tmp_path / f"o{suffix}", pic, pic.rgb)
    grey = mode == "LA" or suffix == ".pgm"
    out = Image.open(tmp_path / f"o{suffix}")
    assert out.mode == ("L" if grey else "RGB")
    if suffix != ".jpg":  # lossless: the values too
        colour = arr[..., :3] if mode != "LA" else arr[..., :1]
        expected = colour @ REC709_LUMA if grey and mode != "LA" else colour.squeeze()
        assert np.abs(np.asarray(out, np.float32) - expected).max() <= 1


def test_odd_exif_never_costs_the_pixels(tmp_path: Path) -> None:
    rgb16 = np.full((3, 4, 3), 1234, np.uint16)
    _png16(tmp_path / "bad.png", rgb16, "RGB;16", b"MM\x00*\x00\x00\xff\xffgarbage")
    pic = read_picture(tmp_path / "bad.png")
    assert pic.size == (3, 4) and "exif" not in pic.info
    huge = Image.Exif()
    huge[270] = "x" * 70000  # more than one JPEG marker holds
    pic.info["exif"] = huge.tobytes()
    pic.bits = 8
    write_picture(tmp_path / "o.jpg", pic, pic.rgb)  # written without its EXIF
    assert Image.open(tmp_path / "o.jpg").size == (4, 3)


def test_a_writer_refusing_an_image_is_an_image_error(tmp_path: Path, monkeypatch) -> None:
    import tifffile

    def refuse(*args, **kwargs):
        raise ValueError("not enough samples")

    monkeypatch.setattr(tifffile, "imwrite", refuse)
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "a.png")
    pic = read_picture(tmp_path / "a.png")
    pic.bits = 16
    with pytest.raises(ImageError, match="o.tif: cannot write"):
        write_picture(tmp_path / "out" / "o.tif", pic, pic.rgb)
    assert list((tmp_path / "out").iterdir()) == []


def test_heic_is_read_upright_and_written_back_as_heic(tmp_path: Path) -> None:
    # An iPhone's photo: HEIC, the rotation in the file, the camera in its EXIF.
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:, :32] = (200, 40, 40)  # left half red as stored
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Apple"
    Image.fromarray(stored).save(tmp_path / "IMG_1.HEIC", exif=exif.tobytes(), quality=95)
    pic = read_picture(tmp_path / "IMG_1.HEIC")
    assert pic.rgb.shape == (64, 48, 3)  # turned once: portrait
    assert pic.rgb[:32, :, 0].mean() > 0.5 > pic.rgb[32:, :, 0].mean()  # red on top, as shown
    out = write_picture(tmp_path / "o" / "IMG_1.HEIC", pic, pic.rgb)
    with Image.open(out) as im:
        assert im.format == "HEIF" and im.size == (48, 64)
        tags = im.getexif()
        assert tags.get(0x010F) == "Apple" and tags.get(0x0112, 1) == 1  # not turned twice


def test_heic_without_its_plugin_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if not installed
    (tmp_path / "IMG_1.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(ImageError, match=r"IMG_1.heic: reading HEIC/HEIF needs pillow-heif"):
        read_picture(tmp_path / "IMG_1.heic")
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "a.png")
    pic = read_picture(tmp_path / "a.png")
    with pytest.raises(ImageError, match=r"o.heic: writing HEIC/HEIF needs pillow-heif"):
        write_picture(tmp_path / "o.heic", pic, pic.rgb)
    assert not (tmp_path / "o.heic").exists()


@pytest.mark.parametrize("extended", [False, True])
def test_lossless_webp_stays_lossless(tmp_path: Path, extended: bool) -> None:
    # extended: an ICC profile makes it a VP8X file, the codec's chunk after the profile
    arr = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    save = {"lossless": True, **({"icc_profile": _icc()} if extended else {})}
    out, _ = roundtrip(tmp_path, "a.webp", arr, **save)
    assert (tmp_path / "out" / "a.webp").read_bytes().find(b"VP8L") > 0
    np.testing.assert_array_equal(out, arr)


def test_lossy_webp_stays_lossy(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    roundtrip(tmp_path, "a.webp", arr, quality=80)
    data = (tmp_path / "out" / "a.webp").read_bytes()
    assert data.find(b"VP8 ") > 0 and data.find(b"VP8L") < 0


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [(".jfif", "JPEG"), (".jpe", "JPEG"), (".avif", "AVIF"), (".jp2", "JPEG2000")],
)
def test_more_photo_suffixes_keep_their_format(tmp_path: Path, suffix: str, fmt: str) -> None:
    # Windows' and browsers' .jfif, Android's .avif, JPEG 2000: read from folders and written
    # back in their own format (was: skipped in folders, or written as NAME.jfif.png)
    from PIL import features

    from sllen.runtime.images import list_images

    if fmt == "AVIF" and not features.check("avif"):
        pytest.skip("this Pillow has no AVIF (11.3+)")
    arr = np.full((16, 24, 3), 60, np.uint8)
    Image.fromarray(arr).save(tmp_path / f"a{suffix}", format=fmt)
    assert list_images(tmp_path) == [tmp_path / f"a{suffix}"]
    out, pic = roundtrip(tmp_path, f"a{suffix}", arr)
    assert pic.format == fmt and Image.open(tmp_path / "out" / f"a{suffix}").format == fmt
    assert np.abs(out.astype(int) - 60).max() <= 3


@pytest.mark.parametrize("name", ["an.webp", "an.png", "an.tif", "an16.tif"])
def test_an_animation_or_pages_say_that_one_frame_is_kept(tmp_path: Path, name: str) -> None:
    # was: five of six frames dropped in silence (and a 16-bit multi-page TIFF read as a
    # 4-D stack); a .gif is enhanced as a video instead
    from sllen.runtime.images import FramesDroppedWarning

    rng = np.random.default_rng(0)
    if name == "an16.tif":
        import tifffile

        stack = rng.integers(0, 65536, (3, 8, 10, 3), dtype=np.uint16)
        tifffile.imwrite(tmp_path / name, stack, photometric="rgb")
    else:
        frames = [Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)) for _ in "abc"]
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
    with pytest.warns(FramesDroppedWarning, match=r"3 frames .*only the first"):
        pic = read_picture(tmp_path / name)
    assert pic.rgb.shape == (8, 10, 3)


def test_a_tiff_thumbnail_or_a_jpeg_preview_is_not_a_frame(tmp_path: Path) -> None:
    import warnings

    big = Image.fromarray(np.full((16, 20, 3), 90, np.uint8))
    big.save(tmp_path / "t.tif", save_all=True, append_images=[big.resize((5, 4))])
    # a camera JPEG with a second picture (MPO: a preview, a depth map)
    big.save(tmp_path / "m.jpg", format="MPO", save_all=True, append_images=[big])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_picture(tmp_path / "t.tif").rgb.shape == (16, 20, 3)
        assert read_picture(tmp_path / "m.jpg").format == "MPO"


def test_a_lossless_webp_with_a_large_profile_stays_lossless(tmp_path: Path) -> None:
    # the codec's chunk comes after the profile: a 70 KB one hid it from a 64 KB look
    arr = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    icc = _icc()
    icc += b"\0" * (70_000 - len(icc))
    out, pic = roundtrip(tmp_path, "a.webp", arr, lossless=True, icc_profile=icc)
    assert pic.info.get("lossless") and len(pic.info["icc_profile"]) == 70_000
    np.testing.assert_array_equal(out, arr)


def test_an_8bit_multipage_tiff_warns_once(tmp_path: Path) -> None:
    from sllen.runtime.images import FramesDroppedWarning

    frames = [Image.fromarray(np.full((8, 10, 3), v, np.uint8)) for v in (10, 20, 30)]
    frames[0].save(tmp_path / "p.tif", save_all=True, append_images=frames[1:])
    with pytest.warns(FramesDroppedWarning) as said:
        read_picture(tmp_path / "p.tif")
    assert sum(w.category is FramesDroppedWarning for w in said) == 1


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_tiff_with_a_broken_next_page_pointer_still_reads(tmp_path: Path) -> None:
    # its one page read before the page count was taken; counting must not lose it
    import struct

    Image.fromarray(np.full((8, 10, 3), 50, np.uint8)).save(tmp_path / "b.tif")
    data = bytearray((tmp_path / "b.tif").read_bytes())
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd : ifd + 2])[0]
    next_at = ifd + 2 + 12 * count
    data[next_at : next_at + 4] = struct.pack("<I", len(data) + 1000)  # past the end
    (tmp_path / "b.tif").write_bytes(bytes(data))
    assert read_picture(tmp_path / "b.tif").rgb.shape == (8, 10, 3)


def test_a_compressed_8bit_tiff_reads_without_imagecodecs(tmp_path: Path) -> None:
    # tifffile decoded every TIFF first and needs imagecodecs for LZW and JPEG; an 8-bit
    # one is Pillow's, which reads them itself (was: "not a readable image")
    arr = np.random.default_rng(2).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_picture(tmp_path / "lzw.tif").rgb * 255, arr)


def test_an_image_over_pillows_pixel_limit_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 180 MP panorama was "not a readable image (DecompressionBombError: ... could be
    # decompression bomb DOS attack.)". The limit scaled down here: 400 pixels over 2 x 100.
    path = tmp_path / "pano.png"
    Image.new("RGB", (40, 10)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match=r"pano.png: too large to open \(0 megapixels, over the"):
        read_picture(path)


@pytest.mark.parametrize("out", ["o.tif", "o.jpg", "o.png"])
def test_a_tiff_without_a_resolution_is_not_written_back_at_1_dpi(tmp_path: Path, out: str) -> None:
    # Pillow reports dpi (1, 1) for a TIFF that states none; written back as 1 dpi, Word and
    # Photoshop sized a 640-pixel photo 640 inches wide.
    Image.new("RGB", (16, 12), (20, 20, 20)).save(tmp_path / "nores.tif")
    pic = read_picture(tmp_path / "nores.tif")
    assert "dpi" not in pic.info
    write_picture(tmp_path / out, pic, pic.rgb)
    if out.endswith(".tif"):  # Pillow says (1, 1) of a TIFF without the tags: read them
        import tifffile

        with tifffile.TiffFile(tmp_path / out) as tif:
            assert "XResolution" not in tif.pages[0].tags
    else:
        with Image.open(tmp_path / out) as im:
            assert "dpi" not in im.info or min(im.info["dpi"]) > 1, im.info


def test_a_heic_photo_named_jpg_is_read_by_its_content(tmp_path: Path) -> None:
    # It failed ("cannot identify image file") unless a .heic file had been read before in the
    # same process (the opener was registered by suffix only): a fresh process here.
    import subprocess
    import sys

    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "IMG_0001.jpg"
    pillow_heif.from_pillow(Image.new("RGB", (16, 12), (40, 20, 10))).save(path, quality=90)
    code = (
        "import sys\nfrom sllen.runtime.images import read_picture\n"
        "print(read_picture(sys.argv[1]).rgb.shape)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "(12, 16, 3)" in r.stdout, r.stderr


def test_a_video_under_an_image_name_says_it_is_a_video(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    path = tmp_path / "clip.jpg"
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(ImageError, match="clip.jpg: a video file without a video suffix"):
        read_picture(path)
